"""model-scripts/mlp.py (the numpy MLP) and the two studies built on it, mlp-hpo and mlp-noise.

The unit tests call the model with a real ``mexplore.models.Context`` whose reporter and
saver record what they are given; the end-to-end tests run the studies with real MPI.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mexplore import Pruned
from mexplore.importing import load_target
from mexplore.models import Context
from mexplore.store.results_file import load_output

from helpers import REPO, journal, run_cli

MLP = REPO / "model-scripts" / "mlp.py"
train = load_target(f"{MLP}:train")
make_classification = load_target(f"{MLP}:make_classification")
dataset = load_target(f"{MLP}:dataset")
corrupt = load_target(f"{MLP}:corrupt")
init_network = load_target(f"{MLP}:init_network")
forward = load_target(f"{MLP}:forward")
backward = load_target(f"{MLP}:backward")
cross_entropy = load_target(f"{MLP}:cross_entropy")

FAST = {"epochs": 5}  # about 0.1 s a training; enough to learn the task well above chance
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # one BLAS thread per rank, as docs/howto-*.md advise


class Recorder:
    """A real Context that keeps what the model reports and saves; its report at step
    ``prune_at`` raises Pruned, as a worker's does once the master has pruned the task."""

    def __init__(self, tmp_path: Path, prune_at: float | None = None):
        self.reports: list[tuple[float, float]] = []
        self.saved: dict[str, object] = {}
        self.prune_at = prune_at
        self.ctx = Context(task_id=0, attempt=0, rank=1, host="test", local_dir=tmp_path,
                           saver=self._save, reporter=self._report)

    def _report(self, task_id: int, step: float, value: float) -> None:
        self.reports.append((step, value))
        if step == self.prune_at:
            raise Pruned()

    def _save(self, task_id: int, name: str, value: object) -> None:
        self.saved[name] = value


def run(params: dict, tmp_path: Path, **recorder) -> tuple[dict, Recorder]:
    record = Recorder(tmp_path, **recorder)
    return train(params, record.ctx), record


# ---- the data set ---------------------------------------------------------------------------

def test_the_data_set_has_informative_redundant_and_noise_features():
    X, y = make_classification(n_samples=400, n_informative=3, n_redundant=2, n_noise=4, n_classes=4,
                               n_clusters_per_class=2, class_sep=1.0, seed=5)
    assert X.shape == (400, 9) and np.bincount(y).tolist() == [100, 100, 100, 100]
    assert np.linalg.matrix_rank(X[:, :5]) == 3  # the redundant columns combine the informative ones
    assert np.linalg.matrix_rank(X) == 7
    again, _ = make_classification(n_samples=400, n_informative=3, n_redundant=2, n_noise=4, n_classes=4,
                                   n_clusters_per_class=2, class_sep=1.0, seed=5)
    assert np.array_equal(X, again)


def test_the_split_is_fixed_and_standardized_on_the_training_set():
    X, y, X_val, _ = dataset()
    assert X.shape == (3000, 20) and X_val.shape == (1000, 20) and set(np.unique(y)) == {0, 1, 2, 3}
    assert np.allclose(X.mean(axis=0), 0.0) and np.allclose(X.std(axis=0), 1.0)


def test_corrupt_moves_exactly_the_fraction_of_labels_to_another_class():
    X, y, _, _ = dataset()
    X_noisy, y_noisy = corrupt(X, y, 0.3, 0.5, np.random.default_rng(0))
    assert np.sum(y_noisy != y) == 900  # never "flipped" to its own class
    assert np.std(X_noisy - X) == pytest.approx(0.5, rel=0.01)
    assert np.array_equal(corrupt(X, y, 0.0, 0.0, np.random.default_rng(0))[1], y)


# ---- the network ----------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_backpropagation_matches_finite_differences(activation):
    rng = np.random.default_rng(1)
    network = init_network([5, 4, 3, 4], activation, rng)
    X, y, l2 = rng.normal(size=(6, 5)), rng.integers(0, 4, 6), 0.1

    def loss() -> float:
        data_loss, _, _ = cross_entropy(forward(network, X, activation)[-1][0], y)
        return data_loss + l2 / 2 * sum(np.sum(W**2) for W, _ in network)

    layers = forward(network, X, activation)
    _, d_logits, _ = cross_entropy(layers[-1][0], y)
    analytic = backward(network, layers, d_logits, activation, l2)
    for (W, b), (dW, db) in zip(network, analytic):
        for array, gradient in ((W, dW), (b, db)):
            numeric = np.zeros_like(array)
            for index in np.ndindex(array.shape):
                kept = array[index]
                array[index] = kept + 1e-6
                up = loss()
                array[index] = kept - 1e-6
                numeric[index] = (up - loss()) / 2e-6
                array[index] = kept
            assert np.allclose(gradient, numeric, atol=1e-7), activation


# ---- train(params, ctx) ----------------------------------------------------------------------

def test_it_learns_well_above_chance_and_returns_the_metrics(tmp_path):
    result, _ = run(FAST, tmp_path)
    assert set(result) == {"val_loss", "val_accuracy", "train_loss"}
    assert result["val_accuracy"] > 0.75  # chance is 0.25
    assert result["val_loss"] < 0.6 < np.log(4)  # log(4): the loss of a uniform guess


def test_label_noise_lowers_the_accuracy(tmp_path):
    clean = [run({**FAST, "repeat": r}, tmp_path)[0]["val_accuracy"] for r in (0, 1)]
    noisy = [run({**FAST, "repeat": r, "label_noise": 0.5}, tmp_path)[0]["val_accuracy"] for r in (0, 1)]
    assert np.mean(noisy) < np.mean(clean) - 0.1


def test_a_logistic_regression_without_hidden_layers_learns_too(tmp_path):
    result, _ = run({**FAST, "layers": 0}, tmp_path)
    assert result["val_accuracy"] > 0.5


def test_the_same_seed_and_repeat_give_the_same_result_and_another_repeat_another(tmp_path):
    params = {**FAST, "epochs": 2, "label_noise": 0.2, "feature_noise": 0.1, "activation": "tanh"}
    first, second = run(params, tmp_path)[0], run(params, tmp_path)[0]
    assert first == second
    assert run({**params, "repeat": 1}, tmp_path)[0] != first
    assert run({**params, "seed": 1}, tmp_path)[0] != first


def test_it_reports_the_validation_loss_after_every_epoch(tmp_path):
    result, record = run(FAST, tmp_path)
    assert [step for step, _ in record.reports] == [1, 2, 3, 4, 5]
    assert record.reports[-1][1] == pytest.approx(result["val_loss"])


def test_pruned_propagates_and_stops_the_training(tmp_path):
    pruned = Recorder(tmp_path, prune_at=2)
    with pytest.raises(Pruned):
        train({**FAST, "save_weights": True}, pruned.ctx)
    assert [step for step, _ in pruned.reports] == [1, 2]  # no epoch after the one pruned
    assert pruned.saved == {}


def test_save_weights_keeps_the_trained_network(tmp_path):
    _, record = run(FAST, tmp_path)
    assert record.saved == {}  # nothing saved unless asked
    result, record = run({**FAST, "save_weights": True}, tmp_path)
    assert sorted(record.saved) == ["W0", "W1", "W2", "b0", "b1", "b2"]
    assert [record.saved[f"W{i}"].shape for i in range(3)] == [(20, 64), (64, 64), (64, 4)]
    network = [(record.saved[f"W{i}"], record.saved[f"b{i}"]) for i in range(3)]
    _, _, X_val, y_val = dataset()
    predicted = forward(network, X_val, "relu")[-1][0].argmax(axis=1)
    assert np.mean(predicted == y_val) == pytest.approx(result["val_accuracy"])


def test_a_diverging_training_fails_with_the_epoch(tmp_path):
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(FloatingPointError, match="diverged at epoch 1"):
        run({**FAST, "lr": 1e200}, tmp_path)


@pytest.mark.parametrize("params, message", [
    ({"learning_rate": 0.1}, "unknown parameter\\(s\\) learning_rate; it takes lr, hidden"),
    ({"activation": "gelu"}, "activation = 'gelu': expected one of relu, tanh, sigmoid"),
    ({"label_noise": 1.5}, "label_noise = 1.5: expected a fraction in \\[0, 1\\]"),
    ({"feature_noise": -1.0}, "feature_noise = -1.0: expected a number >= 0"),
    ({"epochs": 0}, "epochs = 0: expected an integer >= 1"),
])
def test_bad_parameters_are_refused_by_name(params, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        run(params, tmp_path)


# ---- the studies, end to end with MPI ---------------------------------------------------------

def run_study(name: str, tmp_path: Path, *overrides: str) -> Path:
    output = tmp_path / name
    done = run_cli("run", f"studies/{name}.toml", "-n", "3", "-o", str(output), "--progress", "off",
                   *[item for override in overrides for item in ("--set", override)],
                   cwd=REPO, env={"MEXPLORE_LOCAL_DIR": str(tmp_path / "local"), **ONE_THREAD},
                   timeout=180)
    assert done.returncode == 0, done.stderr
    return output


@pytest.mark.mpi
def test_the_hpo_study_searches_and_prunes(tmp_path):
    output = run_study("mlp-hpo", tmp_path, "space.epochs=10")
    records = journal(output)
    assert len(records) == 16
    statuses = [r["status"] for r in records]
    assert set(statuses) <= {"ok", "pruned"} and statuses.count("ok") >= 4
    assert "pruned" in statuses  # the median pruner stops the laggards once 4 trials are done
    for record in records:
        steps = [step for step, _ in record["reports"]]
        if record["status"] == "ok":
            assert steps == list(range(1, 11))
            assert record["reports"][-1][1] == pytest.approx(record["objective"])
        else:  # judged from step 5 (n_warmup_steps) on; the decision raises at a later report
            assert len(steps) >= 6 and steps == list(range(1, len(steps) + 1))
    assert min(r["objective"] for r in records if r["status"] == "ok") < 0.6


@pytest.mark.mpi
def test_the_noise_study_sweeps_every_level_five_times_and_keeps_the_weights(tmp_path):
    import pandas as pd

    output = run_study("mlp-noise", tmp_path, "space.epochs=3", "space.save_weights=true")
    table = pd.read_csv(output / "results.csv")
    assert len(table) == 30 and set(table.status) == {"ok"}
    assert sorted(zip(table["p:label_noise"], table["p:repeat"])) == [
        (noise, repeat) for noise in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5) for repeat in range(5)]
    accuracy = table.groupby("p:label_noise")["val_accuracy"].mean()
    assert accuracy[0.0] > 0.7 and accuracy[0.5] < accuracy[0.0] - 0.1
    assert load_output(output, 0, "W0").shape == (20, 64)

"""A real training run: a multilayer perceptron in plain numpy, for searches and noise studies.

The model is ``train(params, ctx)``. It trains a fully connected network (softmax output,
cross-entropy loss, L2 weight decay, mini-batch Adam) on a fixed classification data set,
reports the validation loss after every epoch (``ctx.report``, so a pruner can stop it), and
returns ``{"val_loss", "val_accuracy", "train_loss"}``. Used by ``studies/mlp-hpo.toml`` (a
hyperparameter search, see ``docs/howto-hpo.md``) and ``studies/mlp-noise.toml`` (accuracy as
the training labels get noisier, see ``docs/howto-noise.md``).

The data set (nothing is downloaded) is made by :func:`make_classification`, the recipe of
scikit-learn's function of that name (Guyon's design for the NIPS 2003 feature-selection
challenge), with a fixed seed, so every task of every study sees the same data:

- 4 classes, 2 Gaussian clusters per class. The 8 cluster centres sit on distinct vertices
  of a hypercube of side ``2 * class_sep`` in the 6 *informative* features; each cluster's
  points are standard normal draws stretched by a random linear map, so clusters are
  correlated ellipsoids, not round balls.
- 6 *redundant* features: random linear combinations of the informative ones.
- 8 *noise* features: independent standard normal draws that carry no information.
- 4000 samples in all, shuffled; the first 3000 are the training set, the last 1000 the
  validation set (a fixed split). Every feature is standardized with the training set's
  mean and standard deviation.

With the default hyperparameters the clean validation accuracy is about 0.84 (chance: 0.25),
and a tuned network reaches about 0.87: hard enough that hyperparameters and noise matter.

Noise is injected into the *training* set only; validation stays clean, so the returned
accuracy measures how much of the true signal the network learned despite the noise:

- ``label_noise``: the fraction of training labels replaced by a different class, drawn
  uniformly among the other three;
- ``feature_noise``: the standard deviation of Gaussian noise added to every training feature
  (features are standardized, so 1.0 is as large as the signal's spread).

Every random choice of a task (weight initialization, mini-batch order, which labels flip,
the feature noise) comes from one generator seeded with ``(seed, repeat)``: the same
parameters give the same result, and each ``repeat`` of a grid with ``repeats`` is an
independent draw. The data set itself never changes.

Parameters (each optional; :data:`DEFAULTS` holds the defaults, an unknown name is an error):

- ``lr``: Adam's learning rate.
- ``hidden``: units in each hidden layer; ``layers``: how many hidden layers (0 makes a
  multinomial logistic regression).
- ``batch_size``: samples per mini-batch; ``epochs``: passes over the training set.
- ``l2``: weight decay, ``l2 * sum(W**2) / 2`` added to the loss (biases are not decayed).
- ``activation``: ``relu``, ``tanh`` or ``sigmoid``.
- ``label_noise``, ``feature_noise``: the noise injected into the training set (above).
- ``seed``, ``repeat``: together, the seed of the task's random generator.
- ``ranks``: how many ranks train it, for a study that sets ``[model] ranks = "{ranks}"``;
  the training reads the rank count from ``ctx.comm``, so the value is only checked here.
- ``parent``: a ref to the weights another task shared (``ctx.share``): training starts
  from them instead of from a random initialization (population-based training,
  incremental training). ``share_weights``: true sends the trained weights back with the
  result, by reference (``result.shared["weights"]``).
- ``save_weights``: true keeps the trained weights with ``ctx.save``, as ``W0``, ``b0``,
  ``W1``, ... (input layer first).

numpy's BLAS may start several threads per process, which only slows these small matrix
products down when every core already runs a worker: run with ``OMP_NUM_THREADS=1``.
"""

from __future__ import annotations

from functools import cache
from itertools import pairwise
from typing import Any

import numpy as np

DEFAULTS: dict[str, Any] = {
    "lr": 3e-3,
    "hidden": 64,
    "layers": 2,
    "batch_size": 64,
    "epochs": 30,
    "l2": 1e-4,
    "activation": "relu",
    "label_noise": 0.0,
    "feature_noise": 0.0,
    "seed": 0,
    "repeat": 0,
    "save_weights": False,
    "ranks": 1,
    "parent": None,
    "share_weights": False,
}

N_CLASSES = 4
N_TRAIN = 3000
DATA_SEED = 2003

Network = list[tuple[np.ndarray, np.ndarray]]
"""One ``(W, b)`` pair per layer, input to output; ``W`` is (inputs, outputs)."""


def make_classification(
    n_samples: int, n_informative: int, n_redundant: int, n_noise: int, n_classes: int,
    n_clusters_per_class: int, class_sep: float, seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters on hypercube vertices, plus redundant and noise features.

    Returns ``X`` (n_samples, n_informative + n_redundant + n_noise) with the columns in that
    order, and integer labels ``y``; samples are shuffled and classes have equal sizes (to
    within one sample).
    """
    rng = np.random.default_rng(seed)
    n_clusters = n_classes * n_clusters_per_class
    vertices = rng.choice(2**n_informative, size=n_clusters, replace=False)
    bits = (vertices[:, None] >> np.arange(n_informative)) & 1
    centres = (2 * bits - 1) * class_sep
    cluster = np.arange(n_samples) % n_clusters  # cluster c belongs to class c % n_classes
    informative = rng.standard_normal((n_samples, n_informative))
    for c in range(n_clusters):
        members = cluster == c
        stretch = rng.uniform(-1.0, 1.0, (n_informative, n_informative))
        informative[members] = informative[members] @ stretch + centres[c]
    redundant = informative @ rng.uniform(-1.0, 1.0, (n_informative, n_redundant))
    noise = rng.standard_normal((n_samples, n_noise))
    X = np.hstack([informative, redundant, noise])
    y = cluster % n_classes
    order = rng.permutation(n_samples)
    return X[order], y[order]


@cache
def dataset() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fixed train/validation split, standardized; built once per worker."""
    X, y = make_classification(n_samples=4000, n_informative=6, n_redundant=6, n_noise=8,
                               n_classes=N_CLASSES, n_clusters_per_class=2, class_sep=1.0,
                               seed=DATA_SEED)
    mean, std = X[:N_TRAIN].mean(axis=0), X[:N_TRAIN].std(axis=0)
    X = (X - mean) / std
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]


def corrupt(X: np.ndarray, y: np.ndarray, label_noise: float, feature_noise: float,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Copies of the training set with ``label_noise`` of the labels moved to another class
    (exactly that fraction, rounded) and Gaussian noise of std ``feature_noise`` added."""
    flipped = rng.choice(len(y), size=round(label_noise * len(y)), replace=False)
    y = y.copy()
    y[flipped] = (y[flipped] + rng.integers(1, N_CLASSES, size=len(flipped))) % N_CLASSES
    return X + feature_noise * rng.standard_normal(X.shape), y


# An activation maps pre-activations z to outputs a, and its derivative is given (z, a).
ACTIVATIONS = {
    "relu": (lambda z: np.maximum(z, 0.0), lambda z, a: (z > 0.0).astype(z.dtype)),
    "tanh": (np.tanh, lambda z, a: 1.0 - a * a),
    "sigmoid": (lambda z: 0.5 + 0.5 * np.tanh(0.5 * z), lambda z, a: a * (1.0 - a)),  # no overflow
}


def init_network(sizes: list[int], activation: str, rng: np.random.Generator) -> Network:
    """Zero biases; weights N(0, gain / fan_in) with He's gain 2 for relu, Glorot-like 1 otherwise."""
    gain = 2.0 if activation == "relu" else 1.0
    return [(rng.normal(0.0, np.sqrt(gain / fan_in), (fan_in, fan_out)), np.zeros(fan_out))
            for fan_in, fan_out in pairwise(sizes)]


def forward(network: Network, X: np.ndarray, activation: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(z, a)`` of every layer, input first (``(X, X)``); the last ``z`` holds the logits."""
    function, _ = ACTIVATIONS[activation]
    layers = [(X, X)]
    for i, (W, b) in enumerate(network):
        z = layers[-1][1] @ W + b
        layers.append((z, z if i == len(network) - 1 else function(z)))
    return layers


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean softmax cross-entropy, its gradient with respect to the logits, and the predictions."""
    shifted = logits - logits.max(axis=1, keepdims=True)  # log-sum-exp trick: no overflow
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(y))
    gradient = np.exp(log_probs)
    gradient[rows, y] -= 1.0
    return float(-log_probs[rows, y].mean()), gradient / len(y), logits.argmax(axis=1)


def backward(network: Network, layers: list, d_logits: np.ndarray, activation: str,
             l2: float) -> Network:
    """Backpropagation: ``(dW, db)`` per layer, the weight-decay term included."""
    _, derivative = ACTIVATIONS[activation]
    gradients = []
    delta = d_logits  # dLoss/dz of the current layer, from the output back
    for i in reversed(range(len(network))):
        W, _ = network[i]
        z_below, a_below = layers[i]  # the input of layer i: the output of the layer below
        gradients.append((a_below.T @ delta + l2 * W, delta.sum(axis=0)))
        if i > 0:  # below layer 0 is the data, which needs no gradient
            delta = (delta @ W.T) * derivative(z_below, a_below)
    return gradients[::-1]


class Adam:
    """Adam (Kingma and Ba, 2015) with bias correction, updating a network in place."""

    def __init__(self, network: Network, lr: float, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.moments = [np.zeros_like(p) for layer in network for p in layer]
        self.squares = [np.zeros_like(p) for layer in network for p in layer]
        self.steps = 0

    def step(self, network: Network, gradients: Network) -> None:
        self.steps += 1
        scale = self.lr * np.sqrt(1 - self.beta2**self.steps) / (1 - self.beta1**self.steps)
        parameters = [p for layer in network for p in layer]
        flat_gradients = [g for layer in gradients for g in layer]
        for p, g, m, v in zip(parameters, flat_gradients, self.moments, self.squares):
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            p -= scale * m / (np.sqrt(v) + self.eps)


def evaluate(network: Network, X: np.ndarray, y: np.ndarray, activation: str) -> tuple[float, float]:
    """Loss (without the weight decay) and accuracy on ``(X, y)``."""
    layers = forward(network, X, activation)
    loss, _, predicted = cross_entropy(layers[-1][0], y)
    return loss, float(np.mean(predicted == y))


def settings(params: dict[str, Any]) -> dict[str, Any]:
    """The defaults overlaid with ``params``; an unknown or out-of-range value is refused, so a
    typo in a study fails its tasks with a message instead of being ignored."""
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"mlp.train got unknown parameter(s) {', '.join(unknown)}; "
                         f"it takes {', '.join(DEFAULTS)}")
    merged = {**DEFAULTS, **params}
    if merged["activation"] not in ACTIVATIONS:
        raise ValueError(f"activation = {merged['activation']!r}: expected one of {', '.join(ACTIVATIONS)}")
    if not 0.0 <= merged["label_noise"] <= 1.0:
        raise ValueError(f"label_noise = {merged['label_noise']}: expected a fraction in [0, 1]")
    if merged["epochs"] < 1:
        raise ValueError(f"epochs = {merged['epochs']}: expected an integer >= 1")
    if merged["feature_noise"] < 0.0:
        raise ValueError(f"feature_noise = {merged['feature_noise']}: expected a number >= 0")
    return merged


def data_parallel_gradients(network: Network, X: np.ndarray, y: np.ndarray, batch: np.ndarray,
                            p: dict[str, Any], comm: Any) -> tuple[float, Network]:
    """The mini-batch's loss and gradients computed by all the task's ranks together: each
    takes a contiguous share of the batch, weighs its mean by its share's size, and the
    sums over ranks (``Allreduce``) are the serial batch's mean. Weight decay is added once,
    after the sum. Every rank then holds the same gradients and takes the same step."""
    from mpi4py import MPI  # only tasks of several ranks need it, and they have it

    share = np.array_split(batch, comm.Get_size())[comm.Get_rank()]
    weight = len(share) / len(batch)
    if len(share):
        layers = forward(network, X[share], p["activation"])
        loss, d_logits, _ = cross_entropy(layers[-1][0], y[share])
        local = backward(network, layers, d_logits * weight, p["activation"], 0.0)
    else:  # a batch smaller than the rank count leaves this rank nothing
        loss, local = 0.0, [(np.zeros_like(W), np.zeros_like(b)) for W, b in network]
    flat = np.concatenate([part.ravel() for pair in local for part in pair] + [[loss * weight]])
    comm.Allreduce(MPI.IN_PLACE, flat)
    gradients, at = [], 0
    for W, b in network:
        dW = flat[at:at + W.size].reshape(W.shape) + p["l2"] * W
        at += W.size
        gradients.append((dW, flat[at:at + b.size].copy()))
        at += b.size
    return float(flat[-1]), gradients


def train(params: dict[str, Any], ctx: Any) -> dict[str, float]:
    """Train on the (noisy) training set; ``ctx.report(epoch, val_loss)`` after every epoch,
    which raises ``mexplore.Pruned`` when a pruner stops the task (left to propagate).

    On a task of several ranks (``[model] ranks``, ``ctx.comm``) it trains data-parallel:
    every rank holds the whole network and the same random stream; each computes the
    gradients of its share of every mini-batch and an allreduce sums them, so the result
    is the serial one up to rounding, at any rank count."""
    p = settings(params)
    rng = np.random.default_rng([int(p["seed"]), int(p["repeat"])])
    X_clean, y_clean, X_val, y_val = dataset()
    X, y = corrupt(X_clean, y_clean, p["label_noise"], p["feature_noise"], rng)
    sizes = [X.shape[1]] + [int(p["hidden"])] * int(p["layers"]) + [N_CLASSES]
    network = init_network(sizes, p["activation"], rng)
    if p["parent"] is not None:  # the parent's arrays are the worker's own copy: train on a fresh one
        network = [(W.copy(), b.copy()) for W, b in ctx.get(p["parent"])]
    optimizer = Adam(network, p["lr"])
    batch_size = int(p["batch_size"])
    comm = ctx.comm if getattr(ctx, "comm", None) is not None and ctx.comm.Get_size() > 1 else None
    for epoch in range(1, int(p["epochs"]) + 1):
        order = rng.permutation(len(y))
        batch_losses = []
        for start in range(0, len(y), batch_size):
            batch = order[start:start + batch_size]
            if comm is None:
                layers = forward(network, X[batch], p["activation"])
                loss, d_logits, _ = cross_entropy(layers[-1][0], y[batch])
                gradients = backward(network, layers, d_logits, p["activation"], p["l2"])
            else:
                loss, gradients = data_parallel_gradients(network, X, y, batch, p, comm)
            optimizer.step(network, gradients)
            batch_losses.append(loss)
        val_loss, val_accuracy = evaluate(network, X_val, y_val, p["activation"])
        if not np.isfinite(val_loss):
            raise FloatingPointError(f"training diverged at epoch {epoch} (lr = {p['lr']})")
        ctx.report(epoch, val_loss)
    if p["share_weights"]:
        ctx.share("weights", network)
    if p["save_weights"]:
        for i, (W, b) in enumerate(network):
            ctx.save(f"W{i}", W)
            ctx.save(f"b{i}", b)
    return {"val_loss": val_loss, "val_accuracy": val_accuracy,
            "train_loss": float(np.mean(batch_losses))}

"""Tasks of several ranks under real MPI: ``ctx.comm`` for Python models, a nested
``mpiexec`` for programs, whole nodes, and the checks before ranks start.

The placement rule itself is tested without MPI in ``test_placement.py``.
"""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers import journal, killed_then_resumed, processes_of, run_cli, wait_until, write_study

from mexplore import read_table

pytestmark = pytest.mark.mpi
MODELS = Path(__file__).parent / "models"


def parallel_study(tmp_path: Path, model: str, *, budget: int, sizes=(1, 2, 4), extra: str = "") -> Path:
    return write_study(tmp_path, f"""
        [study]
        name = "parallel"
        budget = {budget}
        output = "{tmp_path / 'out'}"

        [model]
        {model}
        ranks = "{{n}}"
        {extra}

        [algorithm]
        name = "random"
        seed = 3

        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
        n = {{ type = "categorical", choices = {list(sizes)} }}
    """)


def test_python_tasks_of_changing_sizes_get_a_communicator_of_exactly_their_ranks(tmp_path):
    path = parallel_study(tmp_path, f'python = "{MODELS / "parallel.py"}:spmd"', budget=16)
    done = run_cli("run", str(path), "-n", "5", "--progress", "off", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    assert len(records) == 16 and {r["status"] for r in records} == {"ok"}
    assert {r["params"]["n"] for r in records} == {1, 2, 4}
    for record in records:
        n, metrics = record["params"]["n"], record["metrics"]
        assert metrics["size"] == metrics["total"] == n
        assert metrics["agreed"], "a broadcast from the leader reached the others"
        assert metrics["ranks"] == " ".join(map(str, record["slots"])), "ctx.comm holds the task's slots, leader first"
        assert record["rank"] == record["slots"][0] and len(set(record["slots"])) == n
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert set(table.columns) >= {"slots", "hosts"}
    report = run_cli("report", str(tmp_path / "out"), cwd=tmp_path)
    assert report.returncode == 0 and (tmp_path / "out" / "report" / "index.html").exists(), report.stderr
    stored = read_table(str(tmp_path / "out"))  # results.h5, by a path given as text
    assert list(stored["slots"]) == [" ".join(map(str, r["slots"])) for r in sorted(records, key=lambda r: r["id"])]


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def test_a_program_gets_its_ranks_from_a_nested_launcher_and_never_oversubscribes(tmp_path):
    log = tmp_path / "ranks.log"
    command = f'command = ["{{python}}", "{MODELS / "mpi_program.py"}", "{log}", "0.3"]'
    path = parallel_study(tmp_path, command, budget=10, sizes=(1, 2, 3))
    done = run_cli("run", str(path), "-n", "4", "--progress", "off", cwd=tmp_path, timeout=240)
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    assert len(records) == 10 and {r["status"] for r in records} == {"ok"}, [r.get("error") for r in records]
    for record in records:
        assert record["metrics"]["size"] == record["params"]["n"], "the program's world is exactly its ranks"
    intervals = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
    assert len(intervals) == sum(r["params"]["n"] for r in records)
    assert _most_at_once(intervals) <= 3, "more program ranks ran at once than the job has worker slots"


def test_whole_nodes_and_one_node_placements_on_two_simulated_nodes(tmp_path):
    path = write_study(tmp_path, f"""
        [study]
        name = "nodes"
        budget = 8
        output = "{tmp_path / 'out'}"
        [model]
        python = "{MODELS / 'parallel.py'}:spmd"
        ranks = "{{n}}"
        nodes = "{{k}}"
        [algorithm]
        name = "grid"
        [space]
        x = {{ type = "grid", values = [0.1, 0.2] }}
        n = {{ type = "grid", values = [2, 3] }}
        k = {{ type = "grid", values = [0, 2] }}
    """)
    mpiexec = Path(sys.executable).parent / "mpiexec"
    argv = [sys.executable, "-m", "mexplore", "run", str(path), "--progress", "off"]
    command = [str(mpiexec)]
    for node, ranks in (("nodeA", 3), ("nodeB", 3)):  # workers 1-2 on nodeA (beside the master), 3-5 on nodeB
        command += ["-n", str(ranks), "-env", "MEXPLORE_NODE_NAME", node,
                    "-env", "MEXPLORE_LOCAL_DIR", str(tmp_path / node), *argv, ":"]
    done = subprocess.run(command[:-1], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    assert len(records) == 8 and {r["status"] for r in records} == {"ok"}
    for record in records:
        n, k = record["params"]["n"], record["params"]["k"]
        nodes = record["metrics"]["nodes"].split(",")
        assert len(nodes) == n
        if k == 2:  # spread over both nodes, each held whole
            assert sorted(set(nodes)) == ["nodeA", "nodeB"] and sorted(record["slots"]) == [1, 2, 3, 4, 5]
        else:  # on one node: nodeB, the only one with 3 workers, for n = 3
            assert len(set(nodes)) == 1 and (n == 2 or nodes[0] == "nodeB")


def test_tasks_that_cannot_fit_are_refused_before_ranks_start(tmp_path):
    path = parallel_study(tmp_path, f'python = "{MODELS / "parallel.py"}:spmd"', budget=4)
    done = run_cli("run", str(path), "-n", "1", cwd=tmp_path)
    assert done.returncode == 2 and "model.ranks" in done.stderr and "-n 2 or more" in done.stderr
    fixed = Path(str(path).replace("study.toml", "fixed.toml"))
    fixed.write_text(path.read_text().replace('ranks = "{n}"', "ranks = 6"))
    done = run_cli("run", str(fixed), "-n", "4", cwd=tmp_path)
    assert done.returncode == 2 and "expected at most 3" in done.stderr and "-n 7" in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_proposal_larger_than_the_job_stops_the_run_and_keeps_what_finished(tmp_path):
    path = parallel_study(tmp_path, f'python = "{MODELS / "parallel.py"}:spmd"', budget=30, sizes=(1, 2, 8))
    done = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path)
    assert done.returncode != 0
    assert "can never run in this job: it needs 8 ranks and the job has 2 worker slots" in done.stderr
    assert all(r["status"] == "ok" for r in journal(tmp_path / "out"))


@pytest.mark.parametrize("bad", ['ranks = 0', 'ranks = "{x}"', 'ranks = "{missing}"', 'nodes = -1'])
def test_bad_sizes_name_the_key(tmp_path, bad):
    path = parallel_study(tmp_path, f'python = "{MODELS / "parallel.py"}:spmd"', budget=4)
    path.write_text(path.read_text().replace('ranks = "{n}"', bad))
    done = run_cli("run", str(path), "-n", "3", cwd=tmp_path)
    assert done.returncode == 2 and f"model.{bad.split()[0]}" in done.stderr, done.stderr


def test_the_mpi_simulation_as_a_python_model_on_ctx_comm(tmp_path):
    path = write_study(tmp_path, f"""
        [study]
        name = "heat"
        objective = "max_error"
        output = "{tmp_path / 'out'}"
        [model]
        python = "{MODELS.parent.parent / 'model-scripts' / 'heat_mpi.py'}:model"
        ranks = "{{ranks}}"
        [algorithm]
        name = "grid"
        [space]
        ranks = {{ type = "grid", values = [1, 2, 3] }}
        nx = 41
        dt = 1e-4
        alpha = 0.1
        t_end = 0.2
    """)
    done = run_cli("run", str(path), "-n", "4", "--progress", "off", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    assert sorted(r["metrics"]["ranks"] for r in records) == [1, 2, 3]
    assert len({r["metrics"]["checksum"] for r in records}) == 1


def test_a_prune_stops_every_rank_of_a_python_task_at_the_same_step(tmp_path):
    """ctx.report is a collective on a task of several ranks: were the ranks to act on the
    master's word each on its own, one could stop while the others wait in the model's
    next collective, and the run would hang (this test's timeout)."""
    path = write_study(tmp_path, f"""
        [study]
        name = "pruned"
        budget = 6
        output = "{tmp_path / 'out'}"
        [model]
        python = "{MODELS / 'parallel.py'}:reports_until_pruned"
        ranks = "{{n}}"
        [algorithm]
        name = "optuna.random"
        seed = 3
        pruner = "threshold"
        pruner_options = {{ upper = 0.5 }}
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
        n = {{ type = "categorical", choices = [2, 3] }}
    """)
    done = run_cli("run", str(path), "-n", "4", "--progress", "off", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    assert len(records) == 6 and {r["status"] for r in records} == {"pruned"}, records


def test_the_mlp_trains_data_parallel_to_the_serial_result(tmp_path):
    """model-scripts/mlp.py on ctx.comm: each rank takes a share of every mini-batch and an
    allreduce sums the gradients, so 2 and 3 ranks reach the serial network up to rounding."""
    path = write_study(tmp_path, f"""
        [study]
        name = "mlp-parallel"
        objective = "val_loss"
        output = "{tmp_path / 'out'}"
        [model]
        python = "{MODELS.parent.parent / 'model-scripts' / 'mlp.py'}:train"
        ranks = "{{ranks}}"
        [algorithm]
        name = "grid"
        [space]
        ranks = {{ type = "grid", values = [1, 2, 3] }}
        epochs = 2
        hidden = 16
        batch_size = 50
    """)
    done = run_cli("run", str(path), "-n", "4", "--progress", "off", cwd=tmp_path,
                   env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    records = sorted(journal(tmp_path / "out"), key=lambda r: r["params"]["ranks"])
    assert [r["status"] for r in records] == ["ok"] * 3, records
    serial = records[0]["objective"]
    for record in records[1:]:
        assert record["objective"] == pytest.approx(serial, rel=1e-9), record["params"]
        assert len(record["slots"]) == record["params"]["ranks"]


def test_a_timed_out_program_of_several_ranks_leaves_no_rank_running(tmp_path):
    command = f'command = ["{{python}}", "{MODELS / "mpi_program.py"}", "{tmp_path / "ranks.log"}", "600"]'
    path = parallel_study(tmp_path, command, budget=2, sizes=(2,), extra='timeout = "3s"')
    done = run_cli("run", str(path), "-n", "3", "--progress", "off", cwd=tmp_path)
    assert done.returncode == 4, done.stderr  # no task finished ok
    assert [r["status"] for r in journal(tmp_path / "out")] == ["timeout", "timeout"]
    wait_until(lambda: not processes_of(tmp_path / "ranks.log"), "every rank of the timed-out programs is gone",
               timeout=60)


@pytest.mark.parametrize("kind", ["python", "command"])
def test_kill_minus_9_amid_parallel_tasks_then_resume_is_exact(tmp_path, kind):
    if kind == "python":
        model = f'python = "{MODELS / "parallel.py"}:spmd"'
    else:
        model = f'command = ["{{python}}", "{MODELS / "mpi_program.py"}", "{tmp_path / "ranks.log"}", "0.2"]'
    path = parallel_study(tmp_path, model, budget=12, sizes=(1, 2))
    done = killed_then_resumed(path, tmp_path, 4, timeout=240)
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) == 12 and {r["status"] for r in records} == {"ok"}
    assert all(len(r["slots"]) == r["params"]["n"] for r in records)
    assert not processes_of(tmp_path)


GPU_PROGRAM = """\
started=$(date +%s.%N)
sleep 0.2
echo "$started $(date +%s.%N) $CUDA_VISIBLE_DEVICES" >> "$LOG"
echo "MEXPLORE_RESULT {\\"objective\\": 1, \\"seen\\": \\"$CUDA_VISIBLE_DEVICES\\"}"
"""


def test_a_command_asking_for_gpus_sees_that_many_and_no_two_tasks_share_one(tmp_path):
    (tmp_path / "gpus.sh").write_text(GPU_PROGRAM)
    model = f'command = ["bash", "{tmp_path / "gpus.sh"}"]\nenv = {{ LOG = "{tmp_path / "gpus.log"}" }}'
    path = parallel_study(tmp_path, model, budget=12, sizes=(1,), extra='gpus = "{g}"')
    path.write_text(path.read_text().replace("[space]\n", '[space]\ng = { type = "categorical", choices = [1, 2, 3] }\n'))
    done = run_cli("run", str(path), "-n", "5", "--progress", "off", cwd=tmp_path,
                   env={"MEXPLORE_GPUS_PER_NODE": "4"})
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    assert len(records) == 12 and {r["params"]["g"] for r in records} == {1, 2, 3}
    for record in records:
        seen = record["metrics"]["seen"].split(",")
        assert len(set(seen)) == record["params"]["g"] and record["gpu"] == record["metrics"]["seen"]
    spans = [line.split() for line in (tmp_path / "gpus.log").read_text().splitlines()]
    for gpu in "0123":
        using = [(float(start), float(end)) for start, end, devices in spans if gpu in devices.split(",")]
        assert _most_at_once(using) <= 1, f"GPU {gpu} was given to two tasks at once"


RANK_GPU_PROGRAM = """\
echo "$MPI_LOCALRANKID $CUDA_VISIBLE_DEVICES" >> "$LOG.$MEXPLORE_TASK_ID"
if [ "$MPI_LOCALRANKID" = 0 ]; then echo 'MEXPLORE_RESULT {"objective": 1}'; fi
"""


def test_each_rank_of_a_program_with_gpus_gets_its_own_share(tmp_path):
    (tmp_path / "ranks.sh").write_text(RANK_GPU_PROGRAM)
    model = f'command = ["bash", "{tmp_path / "ranks.sh"}"]\nenv = {{ LOG = "{tmp_path / "gpus"}" }}'
    path = parallel_study(tmp_path, model, budget=4, sizes=(2,), extra="gpus = 4")
    done = run_cli("run", str(path), "-n", "5", "--progress", "off", cwd=tmp_path,
                   env={"MEXPLORE_GPUS_PER_NODE": "4"})
    assert done.returncode == 0, done.stderr
    for record in journal(tmp_path / "out"):
        lines = (tmp_path / f"gpus.{record['id']}").read_text().split("\n")
        shares = dict(line.split() for line in lines if line)
        assert sorted(shares) == ["0", "1"], "the nested launcher started both ranks"
        assert all(len(share.split(",")) == 2 for share in shares.values())
        assert sorted(",".join(shares.values()).split(",")) == sorted(record["gpu"].split(",")), \
            "the ranks' shares are disjoint and together the task's GPUs"


def test_more_gpus_than_a_node_has_is_refused_before_ranks_start(tmp_path):
    path = parallel_study(tmp_path, f'python = "{MODELS / "parallel.py"}:spmd"', budget=2)
    path.write_text(path.read_text().replace('ranks = "{n}"', "ranks = 1\ngpus = 2"))
    done = run_cli("run", str(path), "-n", "3", cwd=tmp_path, env={"MEXPLORE_GPUS_PER_NODE": "1"})
    assert done.returncode == 2 and "model.gpus = 2: expected at most 1" in done.stderr, done.stderr
    done = run_cli("run", str(path), "-n", "3", cwd=tmp_path)
    assert done.returncode == 2 and "no GPU count is set" in done.stderr, done.stderr


SIZES = '''
def sizes(queue, space, options):
    futures = [queue.submit({"x": 0.1 * n}, ranks=n) for n in (3, 1, 2, 3, 2, 1)]
    for future in futures:
        future.result()
'''


def test_an_imperative_algorithm_sizes_each_task_with_submit_ranks(tmp_path):
    (tmp_path / "sizes.py").write_text(SIZES)
    path = write_study(tmp_path, f"""
        [study]
        name = "sizes"
        output = "{tmp_path / 'out'}"
        [model]
        python = "{MODELS / 'parallel.py'}:sized"
        ranks = 1
        [algorithm]
        name = "{tmp_path / 'sizes.py'}:sizes"
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
    """)
    done = run_cli("run", str(path), "-n", "4", "--progress", "off", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = journal(tmp_path / "out")
    assert sorted((round(r["params"]["x"] * 10), r["metrics"]["size"]) for r in records) == \
        [(1, 1), (1, 1), (2, 2), (2, 2), (3, 3), (3, 3)]
    assert all(len(r["slots"]) == r["metrics"]["size"] for r in records)

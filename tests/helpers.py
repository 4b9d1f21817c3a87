"""Shared test helpers: spaces, and running the mexplore CLI as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from mexplore.space import Categorical, Float, Grid, Int, Space

REPO = Path(__file__).resolve().parent.parent


def small_space() -> Space:
    return Space(
        parameters={
            "x": Float(-1.0, 1.0),
            "lr": Float(1e-4, 1e-1, log=True),
            "units": Int(16, 64, step=16),
            "act": Categorical(("relu", "tanh")),
            "noise": Grid((0.0, 0.1)),
        },
        constants={"epochs": 3},
    )


def run_cli(*args: str, cwd: Path, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m mexplore ARGS`` in ``cwd``, with a timeout so a hang fails the test."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "MPI_", "HYDRA_"))}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "mexplore", *args], cwd=cwd, env=environment,
        capture_output=True, text=True, timeout=timeout,
    )


def write_study(folder: Path, body: str, name: str = "study.toml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


def journal(output: Path) -> list[dict]:
    lines = (output / "journal.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]

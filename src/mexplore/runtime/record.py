"""``<output>/study.toml``: the study as run, with resolved defaults, seed and versions."""

from __future__ import annotations

import getpass
import platform
import secrets
import socket
import sys
import tomllib
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

STUDY_RECORD = "study.toml"


def resolve_seed(seed: int | None, output: Path) -> int:
    """The study's seed; else the seed of the run being resumed; else a fresh one.

    Recording a drawn seed makes every run reproducible, and a resumed unseeded run
    replays the same sequence instead of starting a new one.
    """
    if seed is not None:
        return seed
    record = output / STUDY_RECORD
    if record.exists():
        previous = tomllib.loads(record.read_text()).get("algorithm", {}).get("seed")
        if isinstance(previous, int):
            return previous
    return secrets.randbelow(2**31)


def write_record(output: Path, resolved: dict[str, Any], provenance: dict[str, Any]) -> Path:
    """Write the record atomically (temp file, then rename), so a kill never leaves half."""
    import tomli_w

    document = {**resolved, "provenance": {**_environment(), **provenance}}
    target = output / STUDY_RECORD
    temporary = target.with_suffix(".toml.tmp")
    temporary.write_text(tomli_w.dumps(document))
    temporary.replace(target)
    return target


def _environment() -> dict[str, Any]:
    versions = {}
    for package in ("mexplore", "mpi4py", "mpich", "numpy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "user": getpass.getuser(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
    }

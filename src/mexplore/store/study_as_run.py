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

from .atomic import atomic_write

STUDY_AS_RUN = "study.toml"


def read_study_as_run(output: Path) -> dict[str, Any]:
    """The record an earlier run left in ``output``, or an empty dict."""
    record = output / STUDY_AS_RUN
    return tomllib.loads(record.read_text()) if record.exists() else {}


def resolve_seed(seed: int | None, previous: dict[str, Any]) -> int:
    """The study's seed; else the seed of the run being resumed; else a fresh one.

    Recording a drawn seed makes every run reproducible, and a resumed unseeded run
    replays the same sequence instead of starting a new one.
    """
    if seed is not None:
        return seed
    earlier = previous.get("algorithm", {}).get("seed")
    return earlier if isinstance(earlier, int) else secrets.randbelow(2**31)


def changed_tables(previous: dict[str, Any], resolved: dict[str, Any]) -> list[str]:
    """Tables that differ from the run being resumed (the budget may change freely).

    Resuming with another space, model or algorithm mixes two studies in one journal; the
    user should hear about it, though it can be what they want.
    """
    if not previous:
        return []
    changed = [name for name in ("space", "model", "algorithm") if previous.get(name) != resolved.get(name)]
    before = {k: v for k, v in previous.get("study", {}).items() if k != "budget"}
    after = {k: v for k, v in resolved.get("study", {}).items() if k != "budget"}
    return changed + (["study"] if before != after else [])


def write_study_as_run(output: Path, resolved: dict[str, Any], provenance: dict[str, Any]) -> Path:
    """Write the record atomically, so a kill never leaves half."""
    import tomli_w

    document = {**resolved, "provenance": {**_environment(), **provenance}}
    return atomic_write(output / STUDY_AS_RUN, tomli_w.dumps(document))


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

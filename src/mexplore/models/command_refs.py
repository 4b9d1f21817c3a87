"""Refs for an external program: files it reads in any language, files it leaves to share.

A Python model reads a ref with ``ctx.get`` and shares with ``ctx.share``; a program in
C, Fortran, R or bash has no ``ctx``. So when a command model's task has refs in its
params, the worker writes each one's data as a file in ``refs/`` of the task folder, in a
form that follows the data, and lists them in ``refs.json`` (its path is
``$MEXPLORE_REFS``): each parameter whose value is a ref maps to that ref's file, and so
does each ref itself (for refs inside lists or tables). The forms:

- bytes: as they are (``.bin``); a str: UTF-8 text (``.txt``);
- a numpy array: ``.npy`` (NumPy's format, read by R's ``RcppCNPy``, Julia's ``NPZ``...);
- numbers, lists and dicts of them (anything JSON holds): ``.json``;
- anything else: a pickle (``.pickle``), readable from Python only.

What the program writes into ``$MEXPLORE_SHARE_DIR`` (``share/`` of the task folder) leaves
with its result as ``ctx.share`` would send it: ``name.npy`` as the array ``name``,
``name.json`` as the JSON value ``name``, any other file as its bytes under its whole file
name. Arrays and bytes are also saved in the cache, as ``ctx.share`` saves them, so a
resumed run finds them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..types import REF_PREFIX, pickled
from .refs import WorkerRefs

REFS_DIR = "refs"
REFS_INDEX = "refs.json"
SHARE_DIR = "share"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def write_ref_files(folder: Path, refs: WorkerRefs, params: dict[str, Any]) -> bool:
    """Write the data of each ref ``params`` hold into ``folder/refs/`` and the index
    ``folder/refs.json`` (parameter name or ref -> the file's path); False when they hold
    none. Values come from the worker's refs as ``ctx.get`` gives them (unpickled once per
    worker, not per task)."""
    held = refs.held_for(params)
    if not held:
        return False
    target = folder / REFS_DIR
    target.mkdir(exist_ok=True)
    paths: dict[str, str] = {}
    for ref, data in held.items():
        value = refs.get(ref)
        stem = _UNSAFE.sub("_", ref.removeprefix(REF_PREFIX).replace("/", "-"))
        suffix, content = _as_file(value, data)
        path = target / f"{stem}{suffix}"
        if isinstance(content, str):
            path.write_text(content)
        elif content is None:  # an array
            import numpy as np

            np.save(path, value, allow_pickle=False)
        else:
            path.write_bytes(content)
        paths[ref] = str(path)
    by_name = {name: paths[value] for name, value in params.items() if isinstance(value, str) and value in paths}
    (folder / REFS_INDEX).write_text(json.dumps(by_name | paths, indent=1))
    return True


def _as_file(value: Any, data: bytes) -> tuple[str, str | bytes | None]:
    """The suffix and content of a ref's file (None: an array, written by ``np.save``)."""
    if isinstance(value, (bytes, bytearray)):
        return ".bin", bytes(value)
    if isinstance(value, str):
        return ".txt", value
    if type(value).__module__ == "numpy" and hasattr(value, "dtype") and value.dtype.kind in "biufc":
        return ".npy", None
    try:
        return ".json", json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return ".pickle", data


def read_shared_files(folder: Path) -> dict[str, Any]:
    """What the program left in ``folder/share/``: name -> value (module docstring)."""
    shared: dict[str, Any] = {}
    directory = folder / SHARE_DIR
    if not directory.is_dir():
        return shared
    for path in sorted(directory.iterdir()):
        if not path.is_file():
            continue
        name = path.stem if path.suffix in (".npy", ".json") else path.name
        if name in shared:  # x.json beside x.npy: one would silently replace the other
            raise ValueError(f"two files in {directory} share as {name!r}; give each share a name of its own")
        if path.suffix == ".npy":
            import numpy as np

            shared[name] = np.load(path, allow_pickle=False)
        elif path.suffix == ".json":
            try:
                shared[name] = json.loads(path.read_text())
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(f"{path} is not JSON ({exc}): a shared .json file must be") from None
        else:
            shared[name] = path.read_bytes()
    return shared


def pickled_shares(shared: dict[str, Any]) -> dict[str, bytes]:
    """The shares as the worker sends them (pickled, each named)."""
    return {name: pickled(value, f"a shared file {name!r}") for name, value in shared.items()}

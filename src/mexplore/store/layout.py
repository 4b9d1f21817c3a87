"""How saved outputs are laid out in HDF5: ``/tasks/<task id>/<name>``, one dataset per value.

- a numpy array (or anything ``numpy.asarray`` takes) is stored as it is;
- ``bytes`` become a ``uint8`` dataset with attribute ``kind = "bytes"``;
- a file path becomes a ``uint8`` dataset with ``kind = "file"`` and its ``filename``;
  a directory becomes a group (``kind = "folder"``) of its entries, recursively;
- a symbolic link inside a saved folder becomes a ``uint8`` dataset of its target path with
  ``kind = "link"``;
- a JSON value (a shared dict or list) becomes a ``uint8`` dataset of its text with
  ``kind = "json"``.

Every packed and flushed cache file has this layout, so ``results.h5`` links into any of
them alike. The records come from the node-local :mod:`~.save_log`; h5py is imported by
the caller, which has the file open.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable
from typing import Any

from .save_log import Kind, Record

KIND_NAMES = {Kind.BYTES: "bytes", Kind.FILE: "file", Kind.LINK: "link", Kind.JSON: "json"}


def store_record(tasks: Any, record: Record) -> None:
    """Write one committed record into ``tasks`` (the ``/tasks`` group), replacing what the
    task held under that name: the last save of a name wins, as in the log."""
    import numpy as np

    group = tasks.require_group(str(record.task))
    if record.name in group:
        del group[record.name]
    if record.kind == Kind.ARRAY:
        group.create_dataset(record.name, data=np.lib.format.read_array(io.BytesIO(record.payload)))
    elif record.kind == Kind.FOLDER:
        group.create_group(record.name).attrs["kind"] = "folder"
    else:
        dataset = group.create_dataset(record.name, data=np.frombuffer(record.payload, dtype=np.uint8))
        dataset.attrs["kind"] = KIND_NAMES[record.kind]
        if record.kind == Kind.FILE:
            dataset.attrs["filename"] = record.meta


def task_ids(file: Any) -> list[int]:
    """The tasks an open cache file holds."""
    return sorted(int(name) for name in file.get("tasks", {}))


def read_value(node: Any) -> Any:
    """A saved output as ``load_output`` gives it, from its HDF5 ``node``: an array, ``bytes``
    (saved bytes and files), a link's target path as a ``str``, a shared JSON value as
    itself, or a dict of name -> value for a folder."""
    import h5py

    if isinstance(node, h5py.Group):
        return {name: read_value(child) for name, child in node.items()}
    kind = node.attrs.get("kind")
    if kind in ("bytes", "file"):
        return node[()].tobytes()
    if kind == "link":
        return os.fsdecode(node[()].tobytes())
    if kind == "json":
        return json.loads(node[()].tobytes())
    return node[()]


def value_of_records(name: str, records: Iterable[Record]) -> Any:
    """What :func:`read_value` would give for ``name`` once ``records`` (one task's committed
    records, in log order) are packed, read from the records themselves: a worker reads a
    task's output from its log without packing it. KeyError when none is ``name`` or in it."""
    inside = f"{name}/"
    found: dict[str, Record] = {}
    for record in records:
        if record.name == name or record.name.startswith(inside):
            if record.name == name:  # saved again: the last save wins, as store_record does
                found = {}
            found[record.name] = record
    if name not in found:
        raise KeyError(name)
    return _record_value(name, found)


def _record_value(name: str, found: dict[str, Record]) -> Any:
    record = found[name]
    if record.kind == Kind.FOLDER:
        prefix = f"{name}/"
        children = {key[len(prefix):].partition("/")[0] for key in found if key.startswith(prefix)}
        return {child: _record_value(prefix + child, found) for child in sorted(children)}
    if record.kind == Kind.ARRAY:
        import numpy as np

        return np.lib.format.read_array(io.BytesIO(record.payload))
    if record.kind == Kind.LINK:
        return os.fsdecode(record.payload)
    if record.kind == Kind.JSON:
        return json.loads(record.payload)
    return record.payload

"""How saved outputs are laid out in HDF5: ``/tasks/<task id>/<name>``, one dataset per value.

- a numpy array (or anything ``numpy.asarray`` takes) is stored as it is;
- ``bytes`` become a ``uint8`` dataset with attribute ``kind = "bytes"``;
- a file path becomes a ``uint8`` dataset with ``kind = "file"`` and its ``filename``;
  a directory becomes a group (``kind = "folder"``) of its entries, recursively;
- a symbolic link inside a saved folder becomes a ``uint8`` dataset of its target path with
  ``kind = "link"``.

Every packed and flushed cache file has this layout, so ``results.h5`` links into any of
them alike. The records come from the node-local :mod:`~.save_log`; h5py is imported by
the caller, which has the file open.
"""

from __future__ import annotations

import io
from typing import Any

from .save_log import Kind, Record

KIND_NAMES = {Kind.BYTES: "bytes", Kind.FILE: "file", Kind.LINK: "link"}


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

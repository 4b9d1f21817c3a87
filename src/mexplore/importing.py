"""Load ``file.py:name`` or ``pkg.module:name`` targets (models and algorithms alike).

Standard library only; every room may use it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
from pathlib import Path
from typing import Any


def split_target(target: str) -> tuple[str, str]:
    """``"a/b.py:fn"`` -> ``("a/b.py", "fn")``; raises ValueError without exactly one name."""
    where, sep, name = target.rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise ValueError(f"{target!r} is not of the form 'file.py:name' or 'package.module:name'")
    return where, name


def load_target(target: str) -> Any:
    """Import the module or file named by ``target`` and return the attribute it names.

    A file is imported once under a private module name, with its folder put first on
    ``sys.path`` so that it can import its neighbours, as a script run directly could. A
    module is looked up from the working directory too, as ``python -m`` would, so the
    same study finds it however the ranks were started.
    """
    where, name = split_target(target)
    if where.endswith(".py"):
        module = _import_file(Path(where))
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        module = importlib.import_module(where)
    try:
        return getattr(module, name)
    except AttributeError:
        raise AttributeError(f"{where} has no attribute {name!r}") from None


_import_lock = threading.Lock()


def _import_file(path: Path) -> Any:
    with _import_lock:  # in-process workers are threads: one executes the file, others wait
        return _import_file_once(path)


def _import_file_once(path: Path) -> Any:
    path = path.resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    module_name = f"_mexplore_user_{path.stem}_{abs(hash(str(path)))}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module

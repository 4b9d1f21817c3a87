"""Load ``file.py:name`` or ``pkg.module:name`` targets (models and algorithms alike).

Standard library only; every room may use it.
"""

from __future__ import annotations

import ast
import difflib
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


def undefined_name(path: Path, name: str) -> str:
    """Why ``name`` cannot come from the Python file ``path``, found by reading its text
    (nothing runs: the launching process must not import a model that loads a GPU stack).

    "" when its top level binds ``name`` (a def, a class, an assignment, an import), and
    also when what it binds cannot be known without running it (``from x import *``, a
    module ``__getattr__``, ``globals()``...): then the import on the ranks decides.
    Otherwise a sentence naming the file and the closest names it does define. Raises
    SyntaxError (or ValueError) when the file does not parse.
    """
    tree = ast.parse(path.read_bytes(), str(path))
    if any(_dynamic(node) for node in ast.walk(tree)):
        return ""
    names: set[str] = set()
    _bind(tree, names)
    if name in names or "__getattr__" in names:
        return ""
    close = difflib.get_close_matches(name, sorted(names), n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"{path.name} defines no {name!r} at its top level{hint}"


_DYNAMIC_NAMES = frozenset({"globals", "vars", "exec", "setattr", "__dict__", "modules"})
"""Names or attributes through which a module can bind names that its text does not show."""


def _dynamic(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return any(alias.name == "*" for alias in node.names)
    if isinstance(node, ast.Name):
        return node.id in _DYNAMIC_NAMES
    return isinstance(node, ast.Attribute) and node.attr in _DYNAMIC_NAMES


_OWN_SCOPE = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _bind(node: ast.AST, names: set[str]) -> None:
    """Add the names ``node`` binds in the module's scope: not inside a function's or a
    class's body, a lambda or a comprehension, which have scopes of their own."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(child.name)
            continue
        if isinstance(child, _OWN_SCOPE):
            continue
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
            names.add(child.id)
        elif isinstance(child, (ast.Import, ast.ImportFrom)):
            names.update(alias.asname or alias.name.split(".")[0] for alias in child.names)
        elif isinstance(child, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and child.name:
            names.add(child.name)
        elif isinstance(child, ast.MatchMapping) and child.rest:
            names.add(child.rest)
        _bind(child, names)


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

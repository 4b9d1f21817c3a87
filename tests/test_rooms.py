"""The rooms of ``src/mexplore`` import only downwards (DESIGN.md, "Rooms").

The test reads every module with ``ast`` (nothing is imported) and fails on an import of a
room of the same or a higher level, naming the file, the line and both rooms, so the
one-way arrows stay true as the code grows.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mexplore"

LEVELS = {
    # the shared vocabulary, stdlib only
    "types": 0, "errors": 0, "node": 0, "importing": 0, "rank_gpus": 0,
    "space": 1, "objectives": 1, "failures": 1, "algorithm_names": 1,
    # rooms that know nothing of each other
    "algorithms": 2, "comms": 2, "config": 2, "models": 2, "store": 2,
    # rooms built on them
    "queue": 3, "report": 3, "batch": 3, "scaffold": 3,
    "testing": 4, "compat": 4,
    # composition roots and faces
    "runtime": 5,
    "cli": 6, "api": 6,
    "__init__": 7, "__main__": 7,
}
"""A module may import only from rooms of a strictly lower level (and from its own room)."""


def _room(module: str) -> str:
    """``mexplore.queue.build`` -> ``queue``; ``mexplore`` (the package) -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path, package: Path) -> tuple[str, str]:
    """The dotted name of a file and of the package relative imports start from."""
    parts = path.relative_to(package.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), ".".join(parts[:-1])
    return ".".join(parts), ".".join(parts[:-1])


def _imports(path: Path, root: Path):
    module, package = _module_name(path, root)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target] if node.module else [f"{target}.{alias.name}" for alias in node.names]
            else:
                names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name == "mexplore" or name.startswith("mexplore."):
                yield node.lineno, module, name


def upward_imports(package: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        for line, module, target in _imports(path, package):
            source, destination = _room(module), _room(target)
            if source == destination:
                continue
            if source not in LEVELS or destination not in LEVELS:
                found.append(f"{path.relative_to(package)}:{line}: room {source!r} or {destination!r} "
                             "has no level in tests/test_rooms.py")
            elif LEVELS[destination] >= LEVELS[source]:
                found.append(f"{path.relative_to(package)}:{line}: {source} (level {LEVELS[source]}) imports "
                             f"{target} ({destination}, level {LEVELS[destination]})")
    return found


def test_no_room_imports_from_its_level_or_above():
    assert upward_imports() == []


def test_the_walk_sees_upward_imports(tmp_path):
    """The checker itself: of three imports in a made-up package, the upward ones are found."""
    package = tmp_path / "mexplore"
    (package / "queue").mkdir(parents=True)
    (package / "queue" / "state.py").write_text(
        "from ..types import Task\nfrom ..runtime import session\nimport mexplore.cli.main\nfrom . import policies\n")
    found = upward_imports(package)
    assert len(found) == 2, found
    assert "queue (level 3) imports mexplore.runtime (runtime, level 5)" in found[0]
    assert "imports mexplore.cli.main" in found[1]


@pytest.mark.parametrize("module", ["mexplore", "mexplore.cli.main"])
def test_light_entry_points_do_not_load_heavy_libraries(module):
    """``mexplore --help`` and ``import mexplore`` stay fast: no optuna, pandas, h5py,
    matplotlib or mpi4py at import time."""
    import subprocess
    import sys

    heavy = ["optuna", "pandas", "h5py", "matplotlib", "mpi4py", "scipy"]
    code = (f"import sys, {module}; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == ""


@pytest.mark.parametrize("package", ["mexplore", "mexplore.algorithms", "mexplore.queue", "mexplore.testing"])
def test_every_public_name_resolves(package):
    """The faces the docs teach (``from mexplore import Algorithm``) hold what they list."""
    import importlib

    module = importlib.import_module(package)
    assert module.__all__, f"{package} exports nothing"
    missing = [name for name in module.__all__ if getattr(module, name, None) is None]
    assert missing == []

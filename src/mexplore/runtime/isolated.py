"""Child-process side of ``isolate = true``: run one Python-function task, write its result.

``python -m mexplore.runtime.isolated file.py:fn`` is started by the worker like any command
model, with the ``MEXPLORE_*`` variables set; ``ctx.save`` appends to a small save log in
the task folder, which the worker then takes into its own; ``ctx.get`` reads the refs the
worker wrote there, and what ``ctx.share`` sends goes back the same way. It prints the traceback and exits 1 when the
function raises; whatever it returns is written as JSON to ``$MEXPLORE_RESULT_FILE``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..importing import load_target
from ..models.command import ISOLATED_SAVES
from ..models.context import Context
from ..models.gpu import assigned_gpu
from ..models.refs import FileRefs
from ..store.save_log import SaveLog


def main(target: str) -> int:
    env = os.environ
    params = json.loads(Path(env["MEXPLORE_PARAMS_FILE"]).read_text())
    folder = Path(env["MEXPLORE_TASK_DIR"])
    saves = SaveLog(folder / ISOLATED_SAVES)
    refs = FileRefs(folder)
    ctx = Context(
        task_id=int(env["MEXPLORE_TASK_ID"]), attempt=int(env["MEXPLORE_ATTEMPT"]),
        rank=int(env.get("MEXPLORE_RANK", "-1")), host=env.get("MEXPLORE_HOST", ""),
        local_dir=Path(env["MEXPLORE_LOCAL_DIR"]), gpu=assigned_gpu(), saver=saves.save,
        reporter=_print_report, refs=refs,
    )
    try:
        returned = load_target(target)(params, ctx)
        refs.close(ctx.task_id)
    finally:
        saves.close()
    Path(env["MEXPLORE_RESULT_FILE"]).write_text(json.dumps(returned, default=_plain))
    return 0


def _print_report(task_id: int, step: float, value: float) -> None:
    """``ctx.report`` in the child: a ``MEXPLORE_REPORT`` line the worker reads, as from any
    command; a prune kills this process."""
    print(f"MEXPLORE_REPORT {step!r} {value!r}", flush=True)


def _plain(value: object) -> object:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot turn {type(value).__name__} into JSON")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

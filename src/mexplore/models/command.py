"""External-program models: any executable, CANDLE/EMEWS style, one process per task.

For each task the worker makes a task folder on node-local storage, writes the parameters
there as JSON, and runs the study's argv list with no shell: placeholders such as
``{params_file}`` or ``{lr}`` are replaced inside single argv items, so a value with
spaces, quotes, ``;`` or ``$(...)`` arrives as one literal argument and is never executed.
The objective comes from the result file, else from the last ``MEXPLORE_RESULT`` line.
``{python}`` is the worker's own interpreter, so a Python script model finds the packages
installed beside mexplore whatever ``python3`` on the PATH is.

A task placed on several worker slots (``[model] ranks``) is started by its leader
through the launcher (:mod:`.launch`), the other slots held idle for its ranks.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..types import Outcome, Place, Result, Status, Task
from .command_refs import (
    REFS_INDEX,
    SHARE_DIR,
    pickled_shares,
    read_shared_files,
    write_ref_files,
)
from .context import Pruned, Reporter, Stopped, task_dir
from .gpu import visible_devices
from .launch import launch_places, launcher_for, outside_the_job
from .outcome import interpret, parse_text
from .process import RESULT_LINE_LIMIT, Exit, GroupGuard, run_program
from .refs import REFS_FILE, SHARED_FILE, keep_shared
from .spec import ModelSpec

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
OUTPUT_LIMIT = 16 << 20
"""Bytes of stdout and of stderr kept per task; the rest is dropped (and counted)."""
RESULT_FILE_LIMIT = 16 << 20
"""Bytes the result file may have; a larger one is a failed task that says so. (What it
holds must still fit :data:`.outcome.METRICS_LIMIT` once read.)"""
ARTIFACTS = "artifacts"
"""Files an external model leaves in ``$MEXPLORE_TASK_DIR/artifacts/`` go into the cache."""
ISOLATED_SAVES = "saved.log"
"""Where ``ctx.save`` writes in an isolated child (a :mod:`~mexplore.store.save_log`); the
worker takes it into its cache."""


def fill(item: str, values: Mapping[str, str]) -> str:
    """Replace ``{name}`` by its value where ``name`` is known; anything else stays as is."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), item)


def as_argument(value: Any) -> str:
    """A parameter value as one argv item: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def isolated_argv(target: str) -> tuple[str, ...]:
    """The command that runs a Python function in a child process (``isolate = true``)."""
    return (sys.executable, "-m", "mexplore.runtime.isolated", target)


class CommandModel:
    """Runs each task as a child process; every way it can go wrong becomes a result."""

    def __init__(
        self, spec: ModelSpec, rank: int, host: str, gpu: str | None, report: Reporter, cache: Any = None,
        guard: GroupGuard | None = None, refs: Any = None,
    ) -> None:
        self.spec = spec
        self.cache = cache
        self.refs = refs  # the worker's: a task's refs go to the child as files, its shares come back
        self.guard = guard
        if guard is not None:
            guard.start()  # in place before the first program runs
        self.argv = spec.command or isolated_argv(spec.python or "")
        self.place = Place(rank, host, gpu)
        self.local_dir = Path(spec.local_dir)
        self.report = report
        self.base_env = {**os.environ, **spec.env, **visible_devices(gpu),
                         "MEXPLORE_LOCAL_DIR": str(self.local_dir), **(guard.environment if guard else {})}

    def __call__(self, task: Task) -> Result:
        folder = task_dir(self.local_dir, task.id, task.attempt)
        (folder / ARTIFACTS).mkdir(parents=True, exist_ok=True)
        params_file, result_file = folder / "params.json", folder / "result"
        params_file.write_text(json.dumps(task.params))
        result_file.unlink(missing_ok=True)
        (folder / SHARED_FILE).unlink(missing_ok=True)
        try:
            ref_env = self._hand_over_refs(task, folder)
        except (KeyError, OSError, TypeError, ValueError) as error:  # a ref that cannot be had: this task fails
            now = time.time()
            problem = error.args[0] if isinstance(error, KeyError) and error.args else error
            return Result.ran(task, self.place, Outcome.failed(f"its refs could not be handed over: {problem}"),
                              now, now)
        places = {
            "params_file": str(params_file), "result_file": str(result_file),
            "task_dir": str(folder), "task_id": str(task.id), "attempt": str(task.attempt),
            "python": sys.executable,
            **{name: as_argument(value) for name, value in task.params.items()},
        }
        env = {**self.base_env, **ref_env, "MEXPLORE_PARAMS_FILE": str(params_file),
               "MEXPLORE_RESULT_FILE": str(result_file), "MEXPLORE_TASK_DIR": str(folder),
               "MEXPLORE_TASK_ID": str(task.id), "MEXPLORE_ATTEMPT": str(task.attempt),
               "MEXPLORE_RANK": str(self.place.rank), "MEXPLORE_HOST": self.place.host,
               "MEXPLORE_ARTIFACTS_DIR": str(folder / ARTIFACTS)}
        argv_template = self.argv
        if task.group is not None and task.shape is not None:
            places |= launch_places(task.shape, task.group, folder) | {"mpiexec": self.spec.mpiexec}
            argv_template = (*launcher_for(self.spec.launcher, places["nodes"], task.shape), *argv_template)
            env = outside_the_job(env) | visible_devices(",".join(task.group.gpus) if task.group.gpus else None)
        started = time.time()
        argv = [fill(item, places) for item in argv_template]
        if unpassable := _with_nul(task.params, argv):
            return Result.ran(task, self.place, Outcome.failed(unpassable), started, time.time())
        try:
            ended_with = run_program(
                argv,
                cwd=Path(self.spec.cwd) if self.spec.cwd else folder, env=env,
                stdout_path=folder / "stdout.txt", stderr_path=folder / "stderr.txt",
                timeout=self.spec.timeout, limit=OUTPUT_LIMIT,
                on_report=lambda step, value: self.report(task.id, step, value), guard=self.guard,
                check=lambda: self.report(task.id, 0.0, 0.0, send=False),
            )
        except Pruned as stopped:  # by the pruner after a report, or by the algorithm; its process group is killed
            status = Status.CANCELLED if isinstance(stopped, Stopped) else Status.PRUNED
            return Result.ran(task, self.place, Outcome(status=status), started, time.time())
        ended = time.time()
        outcome = self._outcome(ended_with, result_file)
        if self.refs is not None and outcome.status is Status.OK:
            outcome = self._take_shares(task.id, folder, outcome)
        if (problem := self._keep_outputs(task.id, folder)) is not None:
            outcome = Outcome.failed(problem, outcome.metrics)
        if outcome.error is not None:  # where, what it said last, then why (the summary line)
            stderr = f"--- end of stderr ---\n{ended_with.stderr_tail.rstrip()}\n---\n" if ended_with.stderr_tail else ""
            where = f"rank {self.place.rank} on {self.place.host}, logs in {folder}\n{stderr}"
            outcome = replace(outcome, error=where + outcome.error)
        return Result.ran(task, self.place, outcome, started, ended)

    def _hand_over_refs(self, task: Task, folder: Path) -> dict[str, str]:
        """The data of the task's refs for the child: a pickle for an isolated Python model;
        files and their index for a program (:mod:`.command_refs`), with the share folder.
        Returns the environment to add."""
        if self.refs is None:
            return {}
        if self.spec.command is None:  # an isolated Python model: ctx.get and ctx.share in the child
            if held := self.refs.held_for(task.params):
                (folder / REFS_FILE).write_bytes(pickle.dumps(held, protocol=pickle.HIGHEST_PROTOCOL))
            return {}
        share = folder / SHARE_DIR
        share.mkdir(exist_ok=True)
        env = {"MEXPLORE_SHARE_DIR": str(share)}
        if write_ref_files(folder, self.refs, task.params):
            env["MEXPLORE_REFS"] = str(folder / REFS_INDEX)
        return env

    def _take_shares(self, task_id: int, folder: Path, outcome: Outcome) -> Outcome:
        """What the child shared leaves with the result: ``shared.pickle`` of an isolated Python
        model, the files of ``share/`` of a program (arrays and bytes also saved in the cache,
        as ``ctx.share`` does). A share folder that cannot be read fails the task, saying why."""
        if self.spec.command is None:
            if (folder / SHARED_FILE).exists():
                self.refs.shared_by_child(task_id, pickle.loads((folder / SHARED_FILE).read_bytes()))
            return outcome
        try:
            shared = read_shared_files(folder)
            self.refs.shared_by_child(task_id, pickled_shares(shared))
            if self.cache is not None:
                for name, value in shared.items():
                    keep_shared(self.cache.save, task_id, name, value)
        except Exception as exc:  # an unreadable file, a full node-local disk...
            return Outcome.failed(f"its shared files ({folder / SHARE_DIR}) could not be taken: "
                                  f"{type(exc).__name__}: {exc}", outcome.metrics)
        return outcome

    def _keep_outputs(self, task_id: int, folder: Path) -> str | None:
        """Move what the task left for keeping into the cache: files in ``artifacts/``, and
        what ``ctx.save`` wrote in an isolated child. Returns why that failed, if it did."""
        if self.cache is None:
            return None
        try:
            self.cache.save_folder(task_id, folder / ARTIFACTS)
            self.cache.absorb(task_id, folder / ISOLATED_SAVES)
        except Exception as exc:  # an unreadable file, a full node-local disk...
            return f"could not keep its outputs in the node-local cache: {type(exc).__name__}: {exc}"
        return None

    def _outcome(self, ended: Exit, result_file: Path) -> Outcome:
        if ended.start_error is not None:
            return Outcome.failed(ended.start_error)
        if ended.timed_out:
            return Outcome.failed(f"timed out after {self.spec.timeout:g} s; its process group was killed",
                                  status=Status.TIMEOUT)
        if ended.returncode < 0:
            return Outcome.failed(f"killed by signal {_signal_name(-ended.returncode)}")
        if ended.returncode > 0:
            return Outcome.failed(f"exit status {ended.returncode}")
        try:
            text = _read_result_file(result_file)
        except ValueError as exc:
            return Outcome.failed(str(exc))
        source = "the result file"
        if text is None:
            text, source = ended.result_line, "the MEXPLORE_RESULT line"
        if text is None and ended.result_too_long:
            return Outcome.failed(
                f"the MEXPLORE_RESULT line is longer than the limit of {RESULT_LINE_LIMIT >> 20} MiB")
        if text is None:
            return Outcome.failed(
                "no result: it wrote nothing to $MEXPLORE_RESULT_FILE and printed no MEXPLORE_RESULT line")
        try:
            returned = parse_text(text)
        except ValueError as exc:
            return Outcome.failed(f"{source} holds no result: {exc}")
        return interpret(returned, self.spec.objectives)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _with_nul(params: Mapping[str, Any], argv: list[str]) -> str | None:
    """Why ``argv`` cannot be passed to a program, if it holds a NUL byte (no C string
    can), naming the parameter it came from."""
    if not any("\0" in item for item in argv):
        return None
    names = [name for name, value in params.items() if isinstance(value, str) and "\0" in value]
    source = f"parameter {names[0]!r}" if names else "an argument"
    return f"{source} holds a NUL byte, which a program cannot receive in its arguments"


def _read_result_file(path: Path) -> str | None:
    """The result file's text, None when it is absent or blank; ValueError when it is
    larger than :data:`RESULT_FILE_LIMIT`."""
    try:
        with open(path, "rb") as file:
            data = file.read(RESULT_FILE_LIMIT + 1)
    except FileNotFoundError:
        return None
    if len(data) > RESULT_FILE_LIMIT:
        raise ValueError(f"the result file is larger than the limit of {RESULT_FILE_LIMIT >> 20} MiB")
    text = data.decode(errors="replace")
    return text if text.strip() else None

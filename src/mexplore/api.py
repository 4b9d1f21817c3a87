"""The Python face of mexplore, beside ``cli/``: run a study from a notebook or a script, and
read a run's results back.

``run`` starts the same job ``mexplore run`` starts, as a child process (``python -m
mexplore run``), never inside the caller: MPI cannot be started twice in one process, a
notebook must survive a run that crashes, and the job must behave as it does from a
terminal (signals, resume, exit codes). ``open_run`` reads the output directory's files,
so it works on any run, finished, still going, or copied from a cluster.
"""

from __future__ import annotations

import codecs
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Mapping
from io import BufferedReader
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .comms.launcher import on_parent_death
from .errors import MexploreError, StudyFileError

if TYPE_CHECKING:
    import pandas as pd

    from .config import Study
    from .objectives import Direction
    from .store.sessions import Session

STUDY_INPUT = "study-input.toml"
"""Where :func:`run` writes a study given as a dict: in its output directory (on the shared
filesystem, where every node of an allocation can read it), beside ``study.toml``."""

TAIL_LINES = 20
"""How many last lines of the job's stderr a :class:`RunFailed` carries."""

_EXIT_CODES = {
    1: "the run failed",
    2: "the study was refused before any rank started",
    3: "another run holds the output directory",
    4: "the tasks fail: none finished ok, or the first ones all failed for one reason",
}
_LAUNCHER_PREFIXES = ("PMI_", "PMIX_", "OMPI_", "PALS_", "ALPS_", "HYDRA_")
"""Variables that tell a process it is an MPI rank (comms/launcher.py); the job ``run``
starts is a new MPI job, so the caller's, if it has any, are not passed on."""


class RunFailed(MexploreError):
    """The job :func:`run` started ended with a non-zero exit code.

    ``code`` is the exit code (``128 + N`` when signal N ended it), ``output`` the run's
    output directory (what finished is there, and the same call resumes it), ``stderr_tail``
    the last lines the job wrote to stderr, which hold its reason.
    """

    def __init__(self, code: int, output: Path, stderr_tail: list[str]) -> None:
        self.code, self.output, self.stderr_tail = code, output, stderr_tail
        lines = "\n".join(f"  {line}" for line in stderr_tail) or "  (nothing)"
        super().__init__(f"the run in {output} ended with exit code {code} ({describe_exit(code)}); "
                         f"the last lines it wrote:\n{lines}")


def describe_exit(code: int) -> str:
    """What a ``mexplore run`` exit code means (docs/running.md lists them)."""
    if code > 128 and code - 128 in signal.valid_signals():
        return f"stopped by {signal.Signals(code - 128).name}; run it again to resume"
    return _EXIT_CODES.get(code, "the run failed")


def run(
    study: str | os.PathLike[str] | Mapping[str, Any],
    ranks: int | None = None,
    set: Mapping[str, Any] | None = None,
    output: str | os.PathLike[str] | None = None,
    progress: str = "auto",
    launcher: str | None = None,
) -> Run:
    """Run a study as ``mexplore run`` does, wait for it, and return its :class:`Run`.

    ``study`` is a study file's path, or a dict with the content of one (relative paths in
    either resolve against the current working directory, as on the command line). ``set``
    overrides keys as ``--set`` does (``{"study.budget": 500}``; values are Python values).
    ``ranks`` is ``-n``: local ranks, master included, from the installed ``mpiexec`` (the
    mpich wheel's, else the one on PATH). ``launcher`` replaces that with a command line,
    such as a site's ``"srun -n {ranks}"`` or ``"mpiexec -n {ranks} --ppn 4"``, inside an
    allocation. Progress and messages go to this process's stderr (a notebook shows them);
    ``progress`` is ``auto``, ``bar``, ``log`` or ``off`` as on the command line.

    Raises :class:`~mexplore.errors.StudyFileError` for a study that cannot be read, and
    :class:`RunFailed` when the job ends with a non-zero exit code. A KeyboardInterrupt
    (Ctrl-C, a notebook's stop button) stops the job as a scheduler does (SIGTERM: the
    workers flush), waits for it and is raised again; the same call resumes the run.
    """
    overrides = [f"{key}={_toml_value(value)}" for key, value in (set or {}).items()]
    if output is not None:
        overrides.append(f"study.output={_toml_value(os.path.abspath(output))}")
    if isinstance(study, Mapping):
        resolved, path = _write_dict_study(study, overrides)
    else:
        from .config import load_study

        path = Path(study)
        resolved = load_study(path, overrides)
    folder = resolved.study.output
    argv = [sys.executable, "-m", "mexplore", "run", str(path), "--progress", _progress(progress)]
    for override in overrides:
        argv += ["--set", override]
    if launcher is not None:
        if ranks is None and "{ranks}" in launcher:
            raise ValueError(f"launcher={launcher!r} needs ranks=N for its {{ranks}}")
        argv = shlex.split(launcher.format(ranks=ranks)) + argv
    elif ranks is not None:
        argv += ["-n", str(ranks)]
    code, tail = _supervise(argv)
    if code != 0:
        raise RunFailed(code, folder, tail)
    return open_run(folder)


def open_run(path: str | os.PathLike[str]) -> Run:
    """The run in output directory ``path``, as it is now (see :class:`Run`)."""
    return Run(Path(path))


class Run:
    """A run's results, read from its output directory.

    A snapshot: the files are read when the Run is made and again on :meth:`refresh`, so
    ``table``, ``best`` and ``failed`` agree with each other until then, even while the run
    goes on and its journal grows. Reading never disturbs a running job.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.refresh()

    def refresh(self) -> Run:
        """Read the files again (tasks finished since are then in the table); returns self."""
        from .store.run import load_run

        self._run = load_run(self.path)
        return self

    @property
    def table(self) -> pd.DataFrame:
        """One row per finished task: ``id``, ``status``, the objective column(s),
        ``p:<param>``, ``m:<metric>``, timings, ``rank``, ``host``, ``error`` (its last line)."""
        return self._run.frame

    @property
    def study(self) -> dict[str, Any]:
        """The study as it ran (``study.toml``): defaults resolved, seed and versions."""
        return self._run.as_run

    @property
    def name(self) -> str:
        return self._run.name

    @property
    def objectives(self) -> list[str]:
        return self._run.objectives

    @property
    def directions(self) -> list[Direction]:
        return self._run.directions

    @property
    def sessions(self) -> list[Session]:
        """The run's sessions (its first run and each resume) in order, each with its start,
        end, workers and tasks: what a throughput or utilization must be reckoned over."""
        return self._run.sessions

    def best(self, n: int = 1, by: str | None = None) -> pd.DataFrame:
        """The ``n`` best ``ok`` rows, best first, by objective ``by`` (default: the first).
        With several objectives, ``table[table.pareto]`` is the Pareto front."""
        from .store.table import best_rows

        objective = by or self.objectives[0]
        if objective not in self.objectives:
            raise KeyError(f"{objective!r} is not an objective of this run ({', '.join(self.objectives)})")
        direction = self.directions[self.objectives.index(objective)]
        return best_rows(self.table, objective, direction, n)

    @property
    def failed(self) -> pd.DataFrame:
        """The rows of tasks that failed (``failed``, ``timeout``, ``lost``; pruned and
        cancelled tasks were stopped on purpose), with the ``error`` column; the journal
        (``journal.jsonl``) holds each whole traceback."""
        from .failures import is_failure

        frame = self.table
        return frame if frame.empty else frame[frame["status"].map(is_failure)]

    def output(self, task_id: int, name: str) -> Any:
        """What task ``task_id`` saved as ``name`` (``ctx.save``): an array, bytes, or a dict
        for a folder. Outputs reach the output directory's ``results.h5`` at each flush and
        at the end of the run, so a task that ran since the last one has none there yet."""
        from .store.results_file import RESULTS_H5, load_output

        if not (self.path / RESULTS_H5).exists():
            raise FileNotFoundError(f"{self.path / RESULTS_H5} does not exist yet: saved outputs "
                                    "are gathered there at each flush and at the end of the run")
        return load_output(self.path, task_id, name)

    def __repr__(self) -> str:
        counts = self.table["status"].value_counts().to_dict() if not self.table.empty else {}
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no tasks yet"
        return f"<mexplore Run {self.name!r} in {self.path}: {summary}>"


# --------------------------------------------------------------------------- the study


def _toml_value(value: Any) -> str:
    """A Python value as the TOML text ``--set`` reads, on one line (``"relu"`` quoted,
    ``True`` as true, a dict as an inline table): tomli_w writes scalars, and would write a
    dict as a table of its own and a list over several lines."""
    import tomli_w

    if isinstance(value, Mapping):
        items = (f"{tomli_w.dumps({str(key): 0}).partition(' = ')[0]} = {_toml_value(item)}"
                 for key, item in value.items())
        return "{ " + ", ".join(items) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return tomli_w.dumps({"v": value}).partition("=")[2].strip()


def _write_dict_study(study: Mapping[str, Any], overrides: list[str]) -> tuple[Study, Path]:
    """Check a study given as a dict, then write it into its output directory, since the
    job reads a file. It is read first from a scratch copy, to learn where its output goes;
    a problem is reported as in "the study dict", not in a temporary file."""
    import tomli_w

    from .config import load_study

    try:
        text = tomli_w.dumps(dict(study))
    except TypeError as error:
        raise MexploreError(f"the study dict cannot be written as TOML: {error}") from None
    with tempfile.TemporaryDirectory(prefix="mexplore-") as scratch:
        draft = Path(scratch) / STUDY_INPUT
        draft.write_text(text)
        try:
            resolved = load_study(draft, overrides)
        except StudyFileError as error:
            raise StudyFileError(error.source.replace(str(draft), "the study dict"), error.key,
                                 error.value, error.expected, error.hint) from None
    from .store.atomic import atomic_write

    resolved.study.output.mkdir(parents=True, exist_ok=True)
    return resolved, atomic_write(resolved.study.output / STUDY_INPUT, text)


def _progress(requested: str) -> str:
    """``auto`` is a bar when this process's stderr is a terminal, else log lines (the
    job's own stderr is a pipe to here, so it cannot tell)."""
    if requested not in ("auto", "bar", "log", "off"):
        raise ValueError(f"progress={requested!r}: expected 'auto', 'bar', 'log' or 'off'")
    if requested != "auto":
        return requested
    return "bar" if sys.stderr.isatty() else "log"


# --------------------------------------------------------------------------- the job


def _supervise(argv: list[str]) -> tuple[int, list[str]]:
    """Run the job to its end, its output copied to ours; returns its exit code (``128 + N``
    for a signal) and the last lines of its stderr.

    The job gets its own session, so a terminal's Ctrl-C reaches this process only and the
    job hears exactly one stop signal, from here; and it is told to stop (SIGTERM) if this
    process dies, so a killed notebook kernel leaves no ranks behind.
    """
    environment = {k: v for k, v in os.environ.items() if not k.startswith(_LAUNCHER_PREFIXES)}
    job = subprocess.Popen(argv, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           start_new_session=True,
                           preexec_fn=_stop_with_parent())
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    pumps = [threading.Thread(target=_pump, args=(job.stdout, sys.stdout, None), daemon=True),
             threading.Thread(target=_pump, args=(job.stderr, sys.stderr, tail), daemon=True)]
    for pump in pumps:
        pump.start()
    try:
        _wait(job)
    finally:
        for pump in pumps:
            pump.join()
    code = job.returncode
    return (128 - code if code < 0 else code), list(tail)


def _wait(job: subprocess.Popen[bytes]) -> None:
    """Wait for the job; on KeyboardInterrupt, stop it as a scheduler does (SIGTERM to its
    process group: every rank flushes), wait until it has, and raise it again. Another
    KeyboardInterrupt meanwhile is passed on too: the job's master then stops waiting for
    its workers and aborts, as on a second Ctrl-C in a terminal."""
    interrupted = False
    while True:
        try:
            job.wait()
            break
        except KeyboardInterrupt:
            interrupted = True
            try:
                os.killpg(job.pid, signal.SIGTERM)
            except ProcessLookupError:  # it ended meanwhile
                pass
    if interrupted:
        raise KeyboardInterrupt


def _pump(source: BufferedReader | None, target: IO[str], tail: deque[str] | None) -> None:
    """Copy the job's stream to ours as it comes (a progress bar redraws a line without
    ending it, so chunks, not lines), keeping its last lines in ``tail``."""
    assert source is not None
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    while chunk := source.read1(1 << 16):
        text = decoder.decode(chunk)
        target.write(text)
        target.flush()
        if tail is not None:
            *lines, pending = (pending + text).replace("\r", "\n").split("\n")
            tail.extend(line for line in lines if line.strip())
    if tail is not None and pending.strip():
        tail.append(pending)


def _stop_with_parent() -> Callable[[], None] | None:
    """What the job runs before it starts: SIGTERM when this process dies. Unlike a rank's
    ``die_with_launcher`` (SIGKILL), a stop signal lets the job flush and end resumable."""
    return on_parent_death(signal.SIGTERM)

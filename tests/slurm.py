"""A private one-node Slurm cluster for the tests: the ``slurm`` fixture (session scope).

It needs Debian's ``slurm-wlm`` and ``munge`` packages (``.ci/run`` installs them when it
runs as root) and root, since slurmd starts the jobs' processes as their users. Everything
lives under one temporary folder: a munge key and socket of its own, ``slurm.conf``, the
controller's state, slurmd's spool, the logs and the job-completion log. The daemons run
in the foreground as children of pytest (munged, slurmctld, slurmd), so stopping them needs
no pid files, and the end of the session checks that none of them, and no process of a job,
is left.

Another Slurm or munge on the machine is left alone: the cluster has its own name, a node
name of its own, ports picked free at start-up, its own munge socket, and every command
(``sbatch``, ``squeue``, ``srun`` inside the jobs, the ones ``mexplore submit`` runs) finds
it through ``SLURM_CONF`` in :attr:`SlurmCluster.env`, never through ``/etc/slurm``.

Accounting: ``sacct`` needs slurmdbd and a database, which a test machine does not have.
The cluster keeps Slurm's job-completion log instead (``jobcomp/filetxt``, one line per
finished job with its state and exit code, the fields ``sacct`` shows for the job) and
keeps finished jobs in the controller for an hour (``MinJobAge``), so :meth:`SlurmCluster.job`
reads a job's state and exit code whether it is queued, running or done.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd")
COMMANDS = ("sbatch", "squeue", "sinfo", "scontrol", "scancel", "srun")
CLUSTER = "mexplore-test"
NODE = "mexplore-node"
PARTITION = "mxtest"
START_TIMEOUT = 60.0
"""A generous ceiling for the node to come up (about 5 s here): a hang fails, a slow disk does not."""
SHAPE_CORES, SHAPE_GPUS, SHAPE_FEATURES, SHAPE_PARTITIONS = 64, 8, ("gpu", "nvme"), ("batch",)
"""The node is declared in the shape of Frontier's and Perlmutter's GPU nodes (64 cores of 2
threads, 8 GPUs, the features and partition their site files ask for), bigger than this
machine (slurmd accepts it with ``config_overrides``), so ``sbatch --test-only`` can judge the
shipped Slurm sites' requests. Jobs that really run here ask for a few tasks only."""
FINISHED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY",
            "BOOT_FAIL", "DEADLINE")


@dataclass(frozen=True)
class JobState:
    """What Slurm says of one job: its state and its exit status (``ExitCode`` ``N:S``: the
    batch script's status N, or S the signal that killed it)."""

    job_id: str
    state: str
    exit_code: str

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


class SlurmCluster:
    """The running cluster: its folder, the environment that reaches it, and a few queries."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.conf = root / "slurm.conf"
        self.completions = root / "jobcomp.log"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.env = {k: v for k, v in self.env.items() if not k.startswith(("SLURM_JOB", "PMI_", "HYDRA_"))}
        self._daemons: dict[str, subprocess.Popen] = {}

    # ------------------------------------------------------------------ queries

    def command(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """A Slurm command against this cluster (``check``: a refused one raises, with what it said)."""
        done = subprocess.run(list(argv), env=self.env, capture_output=True, text=True, timeout=timeout,
                              check=False)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
        return done

    def job(self, job_id: str) -> JobState:
        """The job's state and exit code, from the controller (it keeps finished jobs too)."""
        fields = dict(item.split("=", 1) for item in self.command("scontrol", "-o", "show", "job", job_id)
                      .stdout.split() if "=" in item)
        return JobState(job_id, fields["JobState"], fields["ExitCode"])

    def wait_finished(self, job_id: str, timeout: float = 300) -> JobState:
        """Poll until the job has ended; ``timeout`` is a ceiling for a hang, not a duration."""
        deadline = time.monotonic() + timeout
        while not (state := self.job(job_id)).finished:
            assert time.monotonic() < deadline, f"job {job_id} still {state.state} after {timeout:g} s"
            time.sleep(0.5)
        return state

    def completed_jobs(self) -> list[dict[str, str]]:
        """Every finished job of the session, from the job-completion log (sacct's job lines)."""
        if not self.completions.exists():
            return []
        return [dict(item.split("=", 1) for item in line.split() if "=" in item)
                for line in self.completions.read_text().splitlines() if line.strip()]

    def write_site(self, folder: Path, name: str = "slurm-test") -> Path:
        """A site file for this cluster in ``folder``: srun with PMI-2 (what the mpich wheel
        speaks, see docs/sites.md), whole nodes as on the big machines, no account, and the
        workers' node-local folder inside ``folder``, so a test leaves nothing in /tmp."""
        path = folder / f"{name}.toml"
        path.write_text("\n".join([
            'scheduler = "slurm"',
            'launcher = "srun -N {nodes} -n {ranks} --ntasks-per-node={ranks_per_node} --mpi=pmi2"',
            "ranks_per_node = 3",
            f'queue = "{PARTITION}"',
            'account = ""',
            'walltime = "5m"',
            'stop_before = "15s"',
            f'local_dir = "{folder / "node-local"}"',
            'directives = ["--exclusive"]',
        ]) + "\n")
        return path

    def job_table(self) -> str:
        """The session's finished jobs, one line each (id, name, state, exit code): the record
        a CI log keeps of what ran on the real scheduler (shown with ``pytest -s``)."""
        rows = [f"{job['JobId']:>6} {job['Name']:<20} {job['JobState']:<10} {job['ExitCode']}"
                for job in self.completed_jobs()]
        return "\n".join([f"{'JobId':>6} {'Name':<20} {'State':<10} ExitCode", *rows])

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        self._write_munge_key()
        socket_path = self.root / "munge" / "munge.socket"
        self._spawn("munged", ["munged", "--foreground", "--force", f"--key-file={self.root / 'munge' / 'key'}",
                               f"--socket={socket_path}", f"--pid-file={self.root / 'munge' / 'pid'}",
                               f"--log-file={self.root / 'log' / 'munged.log'}",
                               f"--seed-file={self.root / 'munge' / 'seed'}"])
        self._wait(socket_path.exists, "munged's socket")
        self._write_conf(socket_path)
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._spawn("slurmd", ["slurmd", "-D", "-N", NODE, "-f", str(self.conf)])
        self._wait(self._node_idle, f"node {NODE} idle in sinfo")

    def stop(self) -> None:
        """Cancel what is left, stop the daemons (slurmd first), and check that nothing of the
        cluster still runs."""
        if "slurmctld" in self._daemons and self._daemons["slurmctld"].poll() is None:
            subprocess.run(["scancel", "--partition", PARTITION], env=self.env, capture_output=True,
                           timeout=60, check=False)
        for name in reversed(list(self._daemons)):
            process = self._daemons[name]
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=60)
        left = _processes_with(str(self.conf)) + _processes_with(str(self.root / "munge"))
        assert not left, f"processes of the test cluster still run after it stopped: {left}"

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.root / "log" / f"{name}.out").open("w")
        self._daemons[name] = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def _wait(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not condition():
            ended = [name for name, process in self._daemons.items() if process.poll() is not None]
            if ended or time.monotonic() > deadline:
                why = f"{', '.join(ended)} exited" if ended else f"no {what} after {START_TIMEOUT:g} s"
                raise RuntimeError(f"the test Slurm cluster did not start ({why}); logs:\n{self.logs()}")
            time.sleep(0.2)

    def _node_idle(self) -> bool:
        done = subprocess.run(["sinfo", "-h", "-N", "-n", NODE, "-p", PARTITION, "-o", "%T"], env=self.env,
                              capture_output=True, text=True, timeout=30, check=False)
        return done.returncode == 0 and done.stdout.strip() == "idle"

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-20:])
                         for path in sorted((self.root / "log").glob("*")))

    def _write_munge_key(self) -> None:
        folder = self.root / "munge"
        folder.mkdir(mode=0o700)
        (self.root / "log").mkdir()
        key = folder / "key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)

    def _write_conf(self, munge_socket: Path) -> None:
        state, spool = self.root / "state", self.root / "spool"
        state.mkdir()
        spool.mkdir()
        ctld_port, slurmd_port = _free_ports(2)
        host = socket.gethostname().split(".")[0]
        self.conf.write_text("\n".join([
            f"ClusterName={CLUSTER}",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"AuthInfo=socket={munge_socket}",
            f"StateSaveLocation={state}",
            f"SlurmdSpoolDir={spool}",
            f"SlurmctldPidFile={self.root / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.root / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.root / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={self.root / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/affinity",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "SchedulerType=sched/builtin",
            "MpiDefault=none",
            "ReturnToService=2",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={self.completions}",
            "MinJobAge=3600",  # finished jobs stay in scontrol for the session
            # Job ids of their own: MPICH names its shared memory after the job step's PMI
            # name, and a segment a killed job 1 left in /dev/shm made the next session's job 1
            # spin in MPI_Init until its walltime. A fresh range per session never meets it.
            f"FirstJobId={random.randrange(1_000, 60_000_000)}",
            "KillWait=5",  # SIGTERM to SIGKILL at the walltime: 30 s by default
            "InactiveLimit=0",
            "SlurmdTimeout=0",
            "SlurmdParameters=config_overrides",  # the node below is bigger than this machine
            "GresTypes=gpu",
            (f"NodeName={NODE} NodeHostname={host} NodeAddr=127.0.0.1 Sockets=1 CoresPerSocket={SHAPE_CORES} "
             f"ThreadsPerCore=2 Gres=gpu:{SHAPE_GPUS} Features={','.join(SHAPE_FEATURES)} State=UNKNOWN"),
            f"PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES",
            *(f"PartitionName={name} Nodes={NODE} MaxTime=INFINITE State=UP OverSubscribe=YES"
              for name in SHAPE_PARTITIONS),
        ]) + "\n")
        # GPUs are devices to Slurm: each needs a character device, here copies of /dev/null.
        devices = self.root / "devices"
        devices.mkdir()
        for index in range(SHAPE_GPUS):
            os.mknod(devices / f"gpu{index}", stat.S_IFCHR | 0o666, os.stat("/dev/null").st_rdev)
        (self.root / "gres.conf").write_text(
            f"AutoDetect=off\nNodeName={NODE} Name=gpu File={devices}/gpu[0-{SHAPE_GPUS - 1}]\n")


def _free_ports(count: int) -> list[int]:
    """Ports nobody listens on now (the kernel's pick), so another Slurm's 6817/6818 never clash."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _processes_with(text: str) -> list[str]:
    """``pid command`` of live processes whose command line or environment holds ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if text.encode() in (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes():
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if command:  # a zombie has none: it has ended
                    found.append(f"{entry.name} {command.strip()}")
        except OSError:  # it ended while we looked
            pass
    return found


def missing_prerequisite() -> str | None:
    """Why this machine cannot start the cluster, or None when it can."""
    absent = [name for name in DAEMONS + COMMANDS if shutil.which(name) is None]
    if absent:
        return (f"Slurm is not installed ({', '.join(absent)} not on PATH): apt-get install slurm-wlm munge "
                "(.ci/run does it when it runs as root)")
    if os.geteuid() != 0:
        return "the test Slurm cluster needs root (slurmd starts jobs as their users)"
    return None


JOB_TABLE = Path(__file__).resolve().parent.parent / ".pytest_cache" / "slurm-jobs.txt"
"""Where the session's job table is left for the run's summary (``pytest_terminal_summary``
in conftest.py): the CI log then lists every job the suite ran, whichever test process ran them."""


@pytest.fixture(scope="session")
def slurm() -> Iterator[SlurmCluster]:
    """The private cluster, started once for the session and stopped at its end."""
    reason = missing_prerequisite()
    if reason:
        pytest.skip(reason)
    with tempfile.TemporaryDirectory(prefix="mexplore-slurm-") as folder:
        cluster = SlurmCluster(Path(folder))
        started = time.monotonic()
        try:
            cluster.start()
            yield cluster
        finally:
            table = cluster.job_table()
            cluster.stop()
            JOB_TABLE.parent.mkdir(exist_ok=True)
            JOB_TABLE.write_text(f"Jobs on the test Slurm cluster (up {time.monotonic() - started:.0f} s, "
                                 f"from its start to its stop):\n{table}\n")

"""Run the producer child in a sandbox and supervise it from outside (the parent side).

The child (`autograder/child.py`) runs as

    [unshare --net --pid --fork --kill-child --]  python -I -S <trusted>/autograder/child.py plan

- seeing only the staged sandbox, its trusted copy and the installed packages: `-S` skips
  the `site` module, so no `.pth` file runs (an editable install of the kit, `pip install
  -e .`, maps `autograder` and the kit's modules to the staff tree through one); the child
  puts the package folders (`PACKAGE_DIRS`) on its path itself,
- with a scrubbed environment (no inherited variables; HOME/TMPDIR in a private scratch
  folder; one thread for torch),
- in its own session and process group, killed with SIGKILL as soon as the cases are done
  or time runs out; with the PID namespace, killing it takes every process the student
  started (daemons included) with it,
- under `setrlimit` caps on CPU seconds, address space, processes, file size, open files,
- in a fresh network namespace (no interfaces: connections fail at once) when the OS
  allows, else with a note in the report,
- as the unprivileged user `gpt2grader` when the grader runs as root, with the reference
  outputs and hidden labels root-only (what the machine allows is probed once, in
  `autograder/isolation.py`).

Each group of cases has a wall-clock budget.  If the child overruns it or dies, the case
it was in and the rest of its group are marked, and a fresh child continues with the next
group, so one hostile function costs only its own group.
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import signal
import site
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autograder import npzio
from autograder.case import Case, group_timeout
from autograder.isolation import Isolation, isolation, kill_user, user_slot
from autograder.manifest import SOLUTIONS

LOG_KEEP = 4096  # bytes of the child's stdout/stderr kept from the start and from the end
# The installed packages' folders, put on the child's path without running their .pth files.
PACKAGE_DIRS = [folder for folder in site.getsitepackages() if Path(folder).is_dir()]


@dataclass(frozen=True)
class Limits:
    cpu_s: int = 300  # RLIMIT_CPU per process
    memory_bytes: int = 2 << 30  # RLIMIT_AS (virtual; torch + transformers map about 1 GB)
    processes: int = 512  # RLIMIT_NPROC for the sandbox user (threads count too)
    file_bytes: int = 64 << 20  # RLIMIT_FSIZE
    open_files: int = 256  # RLIMIT_NOFILE
    total_s: float = 300.0  # wall-clock budget of the whole run, all groups
    group_timeout_s: float | None = None  # overrides every group's own wall-clock budget

    def group_seconds(self, group: str) -> float:
        return self.group_timeout_s or group_timeout(group)


@dataclass
class CaseRun:
    """How a case ran.  For a "done" case, the child's output as it was when the child
    reported it done: the judge uses this snapshot, so nothing written later counts."""

    status: str  # "done", "timeout", "crashed", "skipped", "not_run"
    seconds: float | None = None
    note: str = ""
    output: bytes | None = None  # the .npz bytes
    error: str | None = None  # the .err text


def output_path(out: Path, name: str, suffix: str) -> Path:
    return out / (name.replace("/", "__") + suffix)


def snapshot(out: Path, name: str, seconds: float) -> CaseRun:
    """Read a finished case's output right away (links and oversized files refused)."""
    run = CaseRun("done", seconds)
    error, arrays = output_path(out, name, ".err"), output_path(out, name, ".npz")
    try:
        if error.exists() or error.is_symlink():
            run.error = npzio.read_capped(error)[:4000].decode("utf-8", "replace")
        elif arrays.exists() or arrays.is_symlink():
            run.output = npzio.read_capped(arrays)
    except (OSError, ValueError) as problem:
        run.error = f"unusable output file: {problem}"
    return run


def prepare_run_dir(run_dir: Path, iso: Isolation) -> tuple[Path, Path]:
    """Make `out/` and `scratch/` owned by the sandbox user; everything else read-only."""
    run_dir.chmod(0o755)
    out, scratch = run_dir / "out", run_dir / "scratch"
    for folder in (out, scratch):
        folder.mkdir(exist_ok=True)
        folder.chmod(0o700)
        if iso.user:
            os.chown(folder, *iso.user)
    return out, scratch


def _limits(limits: Limits):
    def apply() -> None:
        for kind, value in ((resource.RLIMIT_CPU, limits.cpu_s),
                            (resource.RLIMIT_AS, limits.memory_bytes),
                            (resource.RLIMIT_NPROC, limits.processes),
                            (resource.RLIMIT_FSIZE, limits.file_bytes),
                            (resource.RLIMIT_NOFILE, limits.open_files),
                            (resource.RLIMIT_CORE, 0)):
            try:
                resource.setrlimit(kind, (value, value))
            except (ValueError, OSError):  # e.g. macOS refuses some; the others still apply
                pass

    return apply


def _environment(scratch: Path) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(scratch),
            "TMPDIR": str(scratch), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(scratch),
            "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1",
            "TRANSFORMERS_VERBOSITY": "error"}


class _Log:
    """The child's stdout/stderr: first and last LOG_KEEP bytes, plus the total size."""

    def __init__(self) -> None:
        self.head, self.tail, self.total = b"", b"", 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        if len(self.head) < LOG_KEEP:
            take = LOG_KEEP - len(self.head)
            self.head, data = self.head + data[:take], data[take:]
        self.tail = (self.tail + data)[-LOG_KEEP:]

    def text(self) -> str:
        cut = self.total - len(self.head) - len(self.tail)
        middle = f"\n[... {cut} bytes of output left out ...]\n" if cut > 0 else ""
        return (self.head + middle.encode() + self.tail).decode("utf-8", "replace")


def kill_group(process: subprocess.Popen, iso: Isolation) -> None:
    """SIGKILL the child's process group (and, without a PID namespace, the sandbox user)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if iso.user and not iso.prefix:
        kill_user(iso.user[0])  # before the reap: no daemon ever sees the child gone
    process.wait()


def _run_once(cases: list[Case], run_dir: Path, stage: Path, trusted: Path, iso: Isolation,
              limits: Limits, deadline: float, runs: dict[str, CaseRun], log: _Log,
              solutions_required: bool, prepare: Callable[[], None]) -> str:
    """One child over `cases` until it ends, overruns its group, or the run's deadline.
    `prepare()` runs while the child starts (the stage is written then); the child is let
    in once it returns.

    Fills `runs` for the cases it finished and for the one it was in when it failed.
    Returns how it ended: "finished", "timed out" or "crashed (exit status N)".
    """
    out, scratch = prepare_run_dir(run_dir, iso)
    plan_path = run_dir / "plan.json"
    marker_read, marker_write = os.pipe()
    plan = {"stage": str(stage), "out": str(out), "marker_fd": marker_write,
            "packages": PACKAGE_DIRS,
            "user": list(iso.user) if iso.user else None,
            "solutions": {"path": str(trusted / SOLUTIONS), "required": solutions_required},
            "cases": [case.plan_entry() for case in cases]}
    plan_path.write_text(json.dumps(plan))
    plan_path.chmod(0o644)
    command = iso.prefix + [sys.executable, "-I", "-S", str(trusted / "autograder" / "child.py"),
                            str(plan_path)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=_environment(scratch),
                               cwd=str(scratch), pass_fds=(marker_write,),
                               start_new_session=True, preexec_fn=_limits(limits))
    os.close(marker_write)
    names = {case.name: case for case in cases}
    group, current, starts = cases[0].group, None, {}  # starts: case name -> START time
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    selector.register(marker_read, selectors.EVENT_READ)
    buffer, ended, exited_at = b"", "finished", None
    try:
        prepare()
        try:
            process.stdin.write(b"go\n")
            process.stdin.close()
        except BrokenPipeError:
            pass  # the child is already gone: reported below as a crash
        group_end = time.monotonic() + limits.group_seconds(group)
        while not (exited_at and (not selector.get_map() or time.monotonic() - exited_at > 1.0)):
            if time.monotonic() > min(group_end, deadline):
                ended = "timed out"
                break
            if not selector.get_map():
                time.sleep(0.1)
            for key, _ in selector.select(timeout=0.2) if selector.get_map() else ():
                fd = marker_read if key.fileobj is marker_read else process.stdout.fileno()
                data = os.read(fd, 1 << 16)
                if not data:
                    selector.unregister(key.fileobj)
                elif key.fileobj is marker_read:
                    buffer = (buffer + data)[-(1 << 16):]  # marker lines are short
                else:
                    log.add(data)
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                kind, _, name = line.decode("utf-8", "replace").partition(" ")
                if name not in names or name in runs:
                    continue
                now = time.monotonic()
                if kind == "START" and name not in starts:
                    current, starts[name] = name, now
                    if names[name].group != group:
                        group = names[name].group
                        group_end = now + limits.group_seconds(group)
                elif kind == "DONE" and name in starts:
                    runs[name] = snapshot(out, name, now - starts[name])
                    current = None if current == name else current
            if all(case.name in runs for case in cases):
                break
            if exited_at is None and process.poll() is not None:
                exited_at = time.monotonic()
    finally:
        kill_group(process, iso)
        selector.close()
        os.close(marker_read)
        process.stdout.close()
    if ended == "finished" and any(case.name not in runs for case in cases):
        ended = f"crashed (exit status {process.returncode})"
    if current is not None and current not in runs:
        runs[current] = CaseRun("timeout" if ended == "timed out" else "crashed",
                                time.monotonic() - starts[current], f"the child {ended} in this case")
    return ended


def run_cases(cases: list[Case], run_dir: Path, stage: Path, trusted: Path,
              limits: Limits = Limits(), solutions_required: bool = False,
              prepare: Callable[[], None] | None = None,
              ) -> tuple[dict[str, CaseRun], str, list[str]]:
    """Produce every case's output under `run_dir/out`, restarting the child after a
    failure at the next group.  `solutions_required`: the child refuses to run without the
    staff module of trusted solutions in `trusted` (hidden cases are graded).  `prepare`,
    when given, writes `stage` while the first child starts (Python, numpy and torch load
    meanwhile); the child reads nothing of the stage before it returns.  `trusted` must be
    complete before.

    Returns (case name -> CaseRun, the child's output text, isolation notes).
    """
    with user_slot(isolation().user) as user:
        iso = Isolation(isolation().prefix, user, isolation().notes)
        return _run_all(cases, run_dir, stage, trusted, iso, limits, solutions_required,
                        prepare or _nothing)


def _nothing() -> None:
    """Nothing left to prepare: the stage was written for the first child."""


def _run_all(cases: list[Case], run_dir: Path, stage: Path, trusted: Path, iso: Isolation,
             limits: Limits, solutions_required: bool, prepare: Callable[[], None],
             ) -> tuple[dict[str, CaseRun], str, list[str]]:
    deadline = time.monotonic() + limits.total_s
    runs: dict[str, CaseRun] = {}
    log = _Log()
    pending = list(cases)
    while pending:
        if time.monotonic() >= deadline:
            for case in pending:
                runs[case.name] = CaseRun("not_run", note="the run's time budget was spent")
            break
        ended = _run_once(pending, run_dir, stage, trusted, iso, limits, deadline, runs, log,
                          solutions_required, prepare)
        prepare = _nothing
        if ended != "finished":
            failed = [c for c in pending if c.name in runs and runs[c.name].status != "done"]
            group = failed[0].group if failed else next(c.group for c in pending
                                                         if c.name not in runs)
            for case in pending:
                if case.group == group and case.name not in runs:
                    runs[case.name] = CaseRun("skipped" if failed else "crashed", None,
                                              f"not run: the child {ended} earlier in group "
                                              f"{group}" if failed else f"the child {ended} "
                                              "before this case started")
        pending = [case for case in pending if case.name not in runs]
    return runs, log.text(), iso.notes

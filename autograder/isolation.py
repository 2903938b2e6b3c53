"""What this machine lets the sandbox do, probed once per process (the parent side).

- Network and PID namespaces through `unshare` (as root, or with `-r` through a user
  namespace); where that is refused (some Docker setups), the child keeps the network and
  daemons are killed by user id, and the report says so.
- The packages: every runtime pin of the one package list (`autograder/environment.py`)
  must be installed here, or the report names the missing ones (a submission may import
  any of them).
- The unprivileged user `gpt2grader` (created on first use when run as root; the Gradescope
  bundle's `setup.sh` creates it too), checked to be able to run this Python and find each
  of those packages: folders above an interpreter that lacks o+x (e.g. /root for a pyenv
  Python) get o+x, traverse only.  Run as root without a usable sandbox user, grading
  stops (`IsolationError`): student code never runs as root, where it could rewrite the
  grader's own files.
- `user_slot` gives each grading run a sandbox user of its own (a flock on a root-only lock
  file per user), so that per-user limits (RLIMIT_NPROC) and the final sweep of the user's
  processes never touch another run graded at the same time.
- `lock_secrets` makes the folders of reference outputs, hidden cases and hidden labels,
  and the staff module of trusted solutions, root-only, so the child, running as that
  user, cannot read them.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import pwd
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from pathlib import Path

from autograder.environment import import_name, requirements

SANDBOX_USER = "gpt2grader"
SLOTS = 32  # sandbox users for parallel runs: gpt2grader, gpt2grader1, ... (created on demand)
NAMESPACE_PREFIX = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--"]


class IsolationError(RuntimeError):
    """Run as root, the grader could not set up the unprivileged sandbox user."""


@dataclass
class Isolation:
    """What this machine lets the grader do; `notes` end up in the report."""

    prefix: list[str]  # command prefix for the namespaces ([] when unavailable)
    user: tuple[int, int] | None  # (uid, gid) the child drops to
    notes: list[str] = field(default_factory=list)


# A probe that times out stops the grading run, so it gets far longer than the others.
PYTHON_PROBE_S = 60.0


def _works(command: list[str], timeout: float = 20.0) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=timeout).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _sandbox_user(name: str = SANDBOX_USER) -> tuple[int, int] | None:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if not _works(["useradd", "--system", "--no-create-home", "--shell",
                       "/usr/sbin/nologin", name]):
            return None
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def runtime_modules() -> tuple[list[str], list[str]]:
    """(the modules of the runtime pins installed here, a note on each pin that is not)."""
    modules, notes = [], []
    for requirement in requirements():
        try:
            modules.append(import_name(requirement))
        except PackageNotFoundError:
            notes.append(f"{requirement} is not installed where the grader runs, although "
                         "the handout's package list has it: code importing it fails here")
    return modules, notes


def _user_can_run_python(user: tuple[int, int], modules: list[str]) -> bool:
    """Whether `user` can start this Python, load a compiled package (numpy) and find
    `modules` (torch among them).  torch itself is not imported: that takes seconds, and a
    child that cannot import it fails its cases with the error, still not as root."""
    uid, gid = user
    return _works(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                   sys.executable, "-I", "-c", "import sys, importlib.util, numpy; "
                   f"found = all(importlib.util.find_spec(m) for m in {modules!r}); "
                   f"sys.exit(not found or sys.base_prefix != {sys.base_prefix!r})"],
                  timeout=PYTHON_PROBE_S)


def _open_path_to_python() -> list[str]:
    """Add o+x (traverse, not list) to folders above the interpreter that lack it,
    e.g. /root when Python lives in /root/.pyenv."""
    opened = []
    for start in {Path(sys.base_prefix), Path(sys.prefix), Path(sys.executable).resolve()}:
        for folder in start.parents:
            mode = folder.stat().st_mode
            if not mode & 0o001:
                folder.chmod(mode | 0o001)
                opened.append(str(folder))
    return sorted(set(opened))


@functools.cache
def isolation() -> Isolation:
    """Probe once per process: the packages, namespaces (root or user namespaces) and the
    sandbox user."""
    modules, notes = runtime_modules()
    root = os.geteuid() == 0
    prefix = NAMESPACE_PREFIX if root else NAMESPACE_PREFIX[:1] + ["-r"] + NAMESPACE_PREFIX[1:]
    if not _works(prefix + ["true"]):
        prefix = []
        notes.append("no network/PID namespace on this machine (unshare refused): the "
                     "child keeps network access and daemons are killed by user id only")
    user = _sandbox_user() if root else None
    if root and user is None:
        raise IsolationError(f"could not create the user {SANDBOX_USER}, and the grader "
                             "never runs student code as root")
    if user:
        # probed as a slot user held for the probe alone: a run graded at the same time (a
        # fork bomb, say) may have used up the process limit of the user it holds
        with user_slot(user) as probe:
            usable = _user_can_run_python(probe, modules)
            if not usable:
                opened = _open_path_to_python()
                notes.append(f"made {opened} traversable (o+x) so that {SANDBOX_USER} can "
                             "run Python")
                usable = _user_can_run_python(probe, modules)
        if not usable:
            raise IsolationError(f"{SANDBOX_USER} cannot run {sys.executable} (or import numpy "
                                 f"within {PYTHON_PROBE_S:g} s), and the grader "
                                 "never runs student code as root")
    if not root:
        notes.append("not run as root: the child runs as the grading user, so it can read "
                     "any file that user can (reference outputs included)")
    return Isolation(prefix, user, notes)


def lock_secrets(paths: list[Path]) -> None:
    """Make folders of reference outputs / hidden labels, and secret files, root-only (when
    run as root); absent paths are skipped."""
    if os.geteuid() != 0:
        return
    for path in paths:
        if path.is_dir():
            path.chmod(0o700)
        elif path.is_file():
            path.chmod(0o600)


def kill_user(uid: int) -> None:
    """SIGKILL every process of the sandbox user until none is left (at most ~2 s).  A
    zombie (dead, waiting for its parent to reap it) runs nothing and holds nothing, so it
    does not count."""
    for _ in range(100):
        pids = [int(p) for p in os.listdir("/proc")
                if p.isdigit() and _owner(int(p)) == uid and not _zombie(int(p))]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)


def _owner(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def _zombie(pid: int) -> bool:
    """Whether every thread of `pid` has exited (state Z or X in
    /proc/<pid>/task/<tid>/stat, the field after the parenthesised command name).  A
    leader that exited while its other threads run shows Z too, so each thread is read."""
    try:
        stats = [path.read_text() for path in Path(f"/proc/{pid}/task").glob("*/stat")]
    except OSError:
        return False
    return all(stat[stat.rindex(")") + 2] in "ZX" for stat in stats)


def _slot_dir() -> Path:
    """A root-only folder for the slot lock files, shared by every grader on the machine."""
    folder = Path(tempfile.gettempdir()) / "gpt2grader-slots"
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.lstat()
    if folder.is_symlink() or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        return Path(tempfile.mkdtemp(prefix="gpt2grader-slots-"))  # not shared: refuse it
    return folder


@contextlib.contextmanager
def user_slot(base: tuple[int, int] | None) -> Iterator[tuple[int, int] | None]:
    """An exclusive sandbox user for one run: `base` (slot 0) or gpt2grader<k>.

    On exit every process of that user is killed, so nothing of the run survives it.
    Yields None when there is no sandbox user (not root).
    """
    if base is None:
        yield None
        return
    folder = _slot_dir()
    for k in range(SLOTS):
        handle = open(folder / f"slot-{k}.lock", "a")  # held while the slot is in use
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        user = base if k == 0 else _sandbox_user(f"{SANDBOX_USER}{k}")
        try:
            if user is not None:
                yield user
                return
        finally:
            if user is not None:
                kill_user(user[0])
            handle.close()
    raise RuntimeError(f"all {SLOTS} sandbox users are busy")

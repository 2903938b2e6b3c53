"""The producer child: runs in the sandbox, on a trusted copy of this package.

    python -I -S <run>/trusted/autograder/child.py <run>/plan.json

Started by `autograder/sandbox.py` with a scrubbed environment, resource limits and (when
the OS allows) fresh network and PID namespaces.  It loads the staff module of trusted
solutions (`autograder/producers/solutions.py`, root-only on Gradescope) while it is still
root, drops to the unprivileged user named in the plan, imports the producers, binds the
solutions to them (`trusted.bind`) and forgets this package: `autograder.*` leaves
`sys.modules` and the trusted copy leaves the import path, so student code cannot import
it by name.  Without the staff module (the student's copy) their own functions stand in;
without it where the plan requires it (hidden cases are graded) the child exits at once,
naming the file.  Then for each case it writes
`START <name>` to the marker pipe, runs the producer, saves `<name>.npz` (arrays only) or
`<name>.err` (a short error text), and writes `DONE <name>`.  It never judges anything:
whatever the student's code does here, only those plain files reach the judge.

Its import path is the trusted copy, the staged sandbox, the standard library and the
package folders the plan names, nothing else: `-S` kept every `.pth` file from running,
so an editable install's finder cannot map `autograder` (hidden cases, the reference
builder) or a module absent from the sandbox to the staff tree.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import traceback
import types
from pathlib import Path

TRUSTED = Path(__file__).resolve().parents[1]
MAX_ERROR_CHARS = 2000


def drop_privileges(user: list[int] | None) -> None:
    """Become `user` = [uid, gid] when started as root (no supplementary groups)."""
    if user and os.getuid() == 0:
        os.setgroups([])
        os.setgid(user[1])
        os.setuid(user[0])
        if os.getuid() == 0 or os.geteuid() == 0:
            raise SystemExit("could not drop root privileges")


def describe(error: BaseException, stage: str) -> str:
    """`Type: message` plus the student-side frames of the traceback, short."""
    try:
        frames = [f for f in traceback.extract_tb(error.__traceback__)
                  if f.filename.startswith(stage)]
        where = "".join(f"  {Path(f.filename).relative_to(stage)}:{f.lineno} in {f.name}\n"
                        for f in frames[-4:])
        text = f"{type(error).__name__}: {error}"
        if isinstance(error, SystemExit):
            text = f"SystemExit({error.code!r}) raised while the case ran"
        return (text[:1200] + ("\n" + where if where else ""))[:MAX_ERROR_CHARS]
    except BaseException:  # a student exception whose __str__ itself fails
        return f"{type(error).__name__} (its message could not be printed)"


def load_solutions(path: str, required: bool) -> types.ModuleType | None:
    """The staff module at `path`, executed without entering `sys.modules` and without a
    bytecode copy beside it; None where it is absent (the student's copy).  Absent although
    `required` is a SystemExit naming it: the grader must not fall back silently."""
    if not Path(path).is_file():
        if required:
            raise SystemExit(f"grader error: the trusted solutions {path} are missing, but "
                             "hidden cases are graded; rebuild the bundle from the staff tree")
        return None
    spec = importlib.util.spec_from_file_location("_staff_solutions", path)
    module = importlib.util.module_from_spec(spec)
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


def forget_grader() -> None:
    """Drop every `autograder` module from `sys.modules` and the trusted copy from the
    import path: what the producers bound stays with them, nothing is importable by name."""
    for name in [name for name in sys.modules if name.split(".")[0] == "autograder"]:
        del sys.modules[name]
    sys.path.remove(str(TRUSTED))


def main(plan_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    marker = os.fdopen(plan["marker_fd"], "w", buffering=1)
    solutions = load_solutions(plan["solutions"]["path"], plan["solutions"]["required"])
    drop_privileges(plan.get("user"))
    stage, out = plan["stage"], Path(plan["out"])
    os.chdir(stage)
    sys.path[:0] = [str(TRUSTED), stage]
    sys.path += plan["packages"]
    import numpy  # noqa: F401  (trusted imports first: the student's files cannot shadow them)
    import torch

    torch.set_num_threads(1)
    from autograder import npzio
    from autograder.producers import registry, trusted

    producers = registry()
    if solutions is not None:
        trusted.bind(solutions)
    del solutions, trusted
    forget_grader()
    for case in plan["cases"]:
        name, safe = case["name"], case["name"].replace("/", "__")
        marker.write(f"START {name}\n")
        try:
            arrays = producers[case["producer"]](case["params"])
            npzio.save(out / f"{safe}.npz", arrays)
        except BaseException as error:  # noqa: B036  (SystemExit and friends are answers too)
            (out / f"{safe}.err").write_text(describe(error, stage))
        marker.write(f"DONE {name}\n")
    marker.flush()
    os._exit(0)  # skip atexit handlers and non-daemon threads the student may have left


if __name__ == "__main__":
    main(sys.argv[1])

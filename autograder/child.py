"""The producer child: runs in the sandbox, on a trusted copy of this package.

    python -I -S <run>/trusted/autograder/child.py <run>/plan.json

Started by `autograder/sandbox.py` with a scrubbed environment, resource limits and (when
the OS allows) fresh network and PID namespaces.  Before any student code loads it drops
to the unprivileged user named in the plan, then for each case it writes
`START <name>` to the marker pipe, runs the producer, saves `<name>.npz` (arrays only) or
`<name>.err` (a short error text), and writes `DONE <name>`.  It never judges anything:
whatever the student's code does here, only those plain files reach the judge.

Its import path is the trusted copy, the staged sandbox, the standard library and the
package folders the plan names, nothing else: `-S` kept every `.pth` file from running,
so an editable install's finder cannot map `autograder` (hidden cases, the reference
builder) or a module absent from the sandbox to the staff tree.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
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


def main(plan_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    marker = os.fdopen(plan["marker_fd"], "w", buffering=1)
    drop_privileges(plan.get("user"))
    stage, out = plan["stage"], Path(plan["out"])
    os.chdir(stage)
    sys.path[:0] = [str(TRUSTED), stage]
    sys.path += plan["packages"]
    import numpy  # noqa: F401  (trusted imports first: the student's files cannot shadow them)
    import torch

    torch.set_num_threads(1)
    from autograder import npzio
    from autograder.producers import registry

    producers = registry()
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

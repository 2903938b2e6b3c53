"""The producer child: runs in the sandbox, on a trusted copy of this package.

    python -I -S <run>/trusted/autograder/child.py <run>/plan.json

Started by `autograder/sandbox.py` with a scrubbed environment, resource limits and (when
the OS allows) fresh network and PID namespaces.  It imports numpy and torch from the
plan's package folders first, then waits for the parent's `go` line on stdin: the parent
stages the submission meanwhile, and the child reads nothing of the stage before it.  It
loads the staff module of trusted
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

While a case runs, a `CallGuard` (a profile hook) watches for the calls its part refuses
(its case module's FORBIDDEN): one made while a function the case grades is on
the stack, directly or through any other function, turns the case into an `.err` that
names the call, where it was made and the graded function it served.

Its import path is the trusted copy, the staged sandbox, the standard library and the
package folders the plan names, nothing else: `-S` kept every `.pth` file from running,
so an editable install's finder cannot map `autograder` (hidden cases, the reference
builder) or a module absent from the sandbox to the staff tree.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import threading
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


# The builtins the guard's hook uses, bound before any student code can replace them.
_getattr, _isinstance, _next, _type = getattr, isinstance, next, type


def _c_module(function: object) -> str:
    """The module a C function belongs to (its own, its class's or its object's), or ""."""
    owner = _getattr(function, "__objclass__", None) or _type(_getattr(function, "__self__", None))
    for name in (_getattr(function, "__module__", None), _getattr(owner, "__module__", None)):
        if _isinstance(name, str):
            return name
    return ""


def _resolve(names: list[str], allowed: list[str]) -> tuple[dict, dict, dict, dict, tuple, tuple]:
    """Code objects, C functions, C function names and folders (each -> the name it is
    refused under), the allowed files inside those folders, and the names of the refused
    modules that ship compiled code (`tokenizers`, `tiktoken`: their C functions are
    refused by module name).  A module refuses everything under its folder, a function
    its code, a class the code of its own methods, and a C function also every C function
    whose name holds its name (the same kernel through `torch.ops.aten`, or its `_flash`
    and `_math` forms).  A module that is not installed refuses nothing, nor does one of
    the submission's that fails to import (the case that runs it fails anyway)."""
    codes, builtins, kernels, folders, modules = {}, {}, {}, {}, []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except BaseException:  # noqa: B036  (a submission's module may raise anything)
            spec = None
        if spec is not None:
            places = [str(Path(d)) + os.sep for d in spec.submodule_search_locations or ()]
            if any(any(Path(place).glob("*.so")) for place in places):
                modules.append(name)
            places += [spec.origin] if spec.origin and not spec.submodule_search_locations else []
            folders.update(dict.fromkeys(places, name))
            continue
        module, _, attribute = name.rpartition(".")
        try:
            target = getattr(importlib.import_module(module), attribute)
        except BaseException:  # noqa: B036  (not installed, or a submission's that fails)
            continue
        members = vars(target).values() if isinstance(target, type) else [target]
        for member in members:
            member = getattr(member, "__func__", member)
            if hasattr(member, "__code__"):
                codes[member.__code__] = name
            elif isinstance(member, types.BuiltinFunctionType) and not isinstance(target, type):
                builtins[member] = kernels[attribute] = name
    spared = tuple(spec.origin for spec in map(importlib.util.find_spec, allowed)
                   if spec is not None and spec.origin)
    return codes, builtins, kernels, folders, spared, tuple(m + "." for m in modules) + tuple(modules)


class RefusedCall(Exception):
    """Raised into the student's code at a refused call, to end the case there."""


class CallGuard:
    """A profile hook that records the first refused call made under a graded function and
    raises `RefusedCall` there (Python then unsets the hook; the case is refused anyway)."""

    def __init__(self, stage: str):
        self.stage = str(Path(stage)) + os.sep
        self.hook = self._hook  # one bound method, so that `disarm` can tell it is still set
        self.hits: list[str] = []
        self.graded: set[tuple[str, str]] = set()

    def arm(self, case: dict) -> None:
        self.graded = {(self.stage + rel, qualname) for rel, _, qualname in
                       (function.partition(":") for function in case.get("grades", ()))}
        (self.codes, self.builtins, self.kernels, self.folder_names, self.spared,
         self.modules) = _resolve(case.get("forbidden", []), case.get("allowed", []))
        self.folders = tuple(self.folder_names)
        self.watch_c = bool(self.builtins or self.modules)
        self.hits = []
        if self.graded and (self.codes or self.builtins or self.folders):
            threading.setprofile(self.hook)
            sys.setprofile(self.hook)

    def disarm(self) -> list[str]:
        """Stop watching; the refusals seen (a removed hook is one too)."""
        if self.graded and (self.codes or self.builtins or self.folders):
            if sys.getprofile() is not self.hook and not self.hits:
                self.hits.append("the grader's call guard (sys.setprofile) was removed or "
                                 "replaced while the case ran")
            sys.setprofile(None)
            threading.setprofile(None)
        return self.hits

    def _hook(self, frame: types.FrameType, event: str, arg: object) -> None:
        if self.hits:
            return
        if event == "call":
            code = frame.f_code
            path = code.co_filename
            if code in self.codes:
                self._check(frame.f_back, self.codes[code])
            elif path.startswith(self.folders) and not path.startswith(self.spared):
                module = _next(name for folder, name in self.folder_names.items()
                               if path.startswith(folder))
                self._check(frame.f_back, f"{module} ({code.co_qualname})")
        elif event == "c_call" and self.watch_c:
            try:
                name = _getattr(arg, "__name__", "")
                kernel = _next((refused for part, refused in self.kernels.items()
                                if part in name), None)
                refused = arg in self.builtins or kernel or _c_module(arg).startswith(self.modules)
            except Exception:  # an unhashable callable, or attributes that raise
                refused = False
            if refused:
                self._check(frame, self.builtins.get(arg) or kernel or f"{_c_module(arg)}.{name}")

    def _check(self, frame: types.FrameType | None, call: str) -> None:
        """Record `call` when a graded function is on the stack from `frame` down."""
        where = None
        while frame is not None:
            code = frame.f_code
            if where is None and code.co_filename.startswith(self.stage):
                where = f"{code.co_filename[len(self.stage):]}:{frame.f_lineno}"
            if (code.co_filename, code.co_qualname) in self.graded:
                self.hits.append(f"refused call: {call}, made at {where} while "
                                 f"{code.co_qualname} ran; grading refuses it there, since "
                                 "it would do the graded function's job")
                raise RefusedCall(self.hits[-1])
            frame = frame.f_back


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


def skip_dynamo_imports(torch: types.ModuleType) -> None:
    """Let `torch.optim.Optimizer`'s methods run without importing `torch._dynamo`.  torch
    wraps them in `torch._disable_dynamo`, whose first call imports `torch._dynamo` (seconds
    of the run) only to keep `torch.compile` out of them; the child never compiles, so each
    wrapper is handed the plain method as its cached "disabled" form."""
    for method in vars(torch.optim.Optimizer).values():
        code = getattr(method, "__code__", None)
        if code is not None and code.co_qualname == "_disable_dynamo.<locals>.inner":
            setattr(method.__wrapped__, "__dynamo_disable", method.__wrapped__)


def main(plan_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    marker = os.fdopen(plan["marker_fd"], "w", buffering=1)
    sys.path += plan["packages"]
    import numpy  # noqa: F401  (trusted imports first: the student's files cannot shadow them)
    import torch

    torch.set_num_threads(1)
    skip_dynamo_imports(torch)
    if sys.stdin.readline() != "go\n":
        os._exit(1)  # the parent could not stage the submission: nothing to run
    solutions = load_solutions(plan["solutions"]["path"], plan["solutions"]["required"])
    drop_privileges(plan.get("user"))
    stage, out = plan["stage"], Path(plan["out"])
    os.chdir(stage)
    sys.path[:0] = [str(TRUSTED), stage]
    from autograder import npzio
    from autograder.producers import registry, trusted

    producers = registry()
    if solutions is not None:
        trusted.bind(solutions)
    del solutions, trusted
    forget_grader()
    guard = CallGuard(stage)
    for case in plan["cases"]:
        name, safe = case["name"], case["name"].replace("/", "__")
        marker.write(f"START {name}\n")
        guard.arm(case)
        try:
            arrays, error = producers[case["producer"]](case["params"]), None
        except BaseException as caught:  # noqa: B036  (SystemExit and friends are answers too)
            arrays, error = None, caught
        refused = guard.disarm()
        if error is None and not refused:
            try:
                npzio.save(out / f"{safe}.npz", arrays)
            except BaseException as caught:  # noqa: B036
                error = caught
        if error is not None or refused:
            raised = [] if error is None or isinstance(error, RefusedCall) else [describe(error, stage)]
            text = "\n".join(refused + raised)
            (out / f"{safe}.err").write_text(text[:MAX_ERROR_CHARS])
        marker.write(f"DONE {name}\n")
    marker.flush()
    os._exit(0)  # skip atexit handlers and non-daemon threads the student may have left


if __name__ == "__main__":
    main(sys.argv[1])

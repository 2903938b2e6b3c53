"""The shopping attack: every solved callable of a release tried as each graded function.

    python shopping.py HANDOUT SOLUTIONS OUT.json [FUNCTION ...]   (cwd: a scratch folder)

HANDOUT is a released handout (`python -m autograder release --parts ...`); its parts
left out ship solved.  For every fenced function of the assignment that has a visible
case of its own (of the FUNCTIONs given, when given), each callable the handout defines (module functions, classes, their
methods, callables held in module-level registries), called with every order-preserving
choice of the graded function's arguments and followed by trivial glue (as is; heads
merged; softmax, times the value, heads merged), stands in for the graded function.  The
stand-in is compiled under the graded function's own file name and qualified name, as a
student's two-line body would be, and each case runs as in the child: the producer under
the handout's `CallGuard`, then the handout's judge against the visible reference.

OUT.json: {"tried": number of stand-ins graded (those whose glued output is a tensor on
the arguments the first case passes), "calls": number of candidate calls tried, "functions": the graded functions shopped for, "scored": one line per
case a stand-in scored on (must be empty)}.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import itertools
import json
import signal
import sys
import types
from pathlib import Path

import torch

HANDOUT = Path(sys.argv[1]).resolve()
ARGUMENTS, sys.argv = sys.argv[2:], sys.argv[:1]  # a candidate that parses flags sees none
sys.path.insert(0, str(HANDOUT))

from autograder import npzio  # noqa: E402  (from the handout, like the child)
from autograder.case import all_cases  # noqa: E402
from autograder.child import CallGuard, load_solutions  # noqa: E402
from autograder.judge import judge_case  # noqa: E402
from autograder.parts import assignment  # noqa: E402
from autograder.producers import registry, trusted  # noqa: E402
from autograder.sandbox import CaseRun  # noqa: E402

LIBRARY = ("models", "modules", "training")  # folders whose files are imported whole
CALL_SECONDS = 2  # per producer run: a stand-in that hangs is stopped


class Stop(Exception):
    """A stand-in ran past CALL_SECONDS."""


def stop(signum, frame):
    raise Stop


def handout_modules(gradable: list[str]) -> list[types.ModuleType]:
    files = sorted({*gradable, "config.py", "utils.py",
                    *(p.relative_to(HANDOUT).as_posix() for folder in LIBRARY
                      for p in (HANDOUT / folder).glob("*.py"))})
    return [importlib.import_module(rel.removesuffix(".py").replace("/", ".")
                                    .removesuffix(".__init__")) for rel in files
            if (HANDOUT / rel).is_file()]


def candidates(modules: list[types.ModuleType], graded: set[str]) -> dict[str, object]:
    """"<module>.<name>" -> callable, for everything the handout's modules define."""
    found: dict[str, object] = {}

    def add(name: str, value: object) -> None:
        value = getattr(value, "__func__", value)
        if callable(value) and name not in graded and id(value) not in seen:
            seen.add(id(value))
            found[name] = value

    seen: set[int] = set()
    for module in modules:
        for name, value in vars(module).items():
            own = getattr(value, "__module__", None) == module.__name__
            if isinstance(value, type) and own:
                add(f"{module.__name__}.{name}", value)
                for attribute, member in vars(value).items():
                    add(f"{module.__name__}.{name}.{attribute}", member)
            elif callable(value) and own:
                add(f"{module.__name__}.{name}", value)
            elif isinstance(value, dict):  # a registry: its callables, and theirs
                for key, entry in value.items():
                    add(f"{module.__name__}.{name}[{key!r}]", entry)
                    for field, member in vars(entry).items() if hasattr(entry, "__dict__") \
                            and not isinstance(entry, types.FunctionType) else ():
                        add(f"{module.__name__}.{name}[{key!r}].{field}", member)
    return found


def graded_name(function: str) -> str:
    rel, _, qualname = function.partition(":")
    return rel.removesuffix(".py").replace("/", ".") + "." + qualname


def merge(out: torch.Tensor) -> torch.Tensor:
    return out.transpose(1, 2).reshape(out.shape[0], out.shape[2], -1)  # (B, T, H * d)


def softmax_value(out: torch.Tensor, args: tuple) -> torch.Tensor:
    value = next(a for a in reversed(args) if isinstance(a, torch.Tensor) and a.dim() == 4
                 and a.shape[-2] == out.shape[-1])
    return merge(out.softmax(-1) @ value)


GLUES = {
    "as is": lambda out, args: out,
    "heads merged": lambda out, args: merge(out),
    "softmax, times the value, heads merged": softmax_value,
}


class Shop:
    """What the stand-in calls: `candidate` on `choice` of its arguments, then `glue`;
    the first arguments it ever gets are kept (`seen`)."""

    candidate: object = None
    choice: tuple[int, ...] = ()
    glue = staticmethod(GLUES["as is"])
    seen: tuple | None = None

    def __call__(self, *args):
        if self.seen is None:
            self.seen = copy.deepcopy(args)
        out = self.candidate(*(args[i] for i in self.choice))
        if isinstance(out, tuple | list) and out:
            out = out[0]
        return self.glue(out, args)


def tensor_glues(candidate, choice: tuple[int, ...], args: tuple) -> list[str]:
    """The glues that turn `candidate`'s output on `choice` of the arguments a case gave the
    graded function into a tensor: only those are worth running the cases.  The candidate
    gets copies of the chosen arguments alone (clones of tensors, deep copies of the rest:
    the module, the optimizer), so nothing it does reaches the case's own; copying every
    argument for each of the tens of thousands of calls took most of the attack's time."""
    signal.alarm(CALL_SECONDS)
    try:
        chosen = [args[i].clone() if isinstance(args[i], torch.Tensor) else copy.deepcopy(args[i])
                  for i in choice]
        out = candidate(*chosen)
        if isinstance(out, tuple | list) and out:
            out = out[0]
        kept = []
        for name, glue in GLUES.items():
            try:
                if type(glue(out, args)) is torch.Tensor:
                    kept.append(name)
            except Exception:  # noqa: S112  (a glue that does not fit this output)
                continue
        return kept
    except BaseException:  # noqa: B036  (a candidate may raise anything, SystemExit too)
        return []
    finally:
        signal.alarm(0)


def stand_in(function: str, shop: Shop) -> types.FunctionType:
    """A function `def <qualname>(*args): return __shop__(*args)`, compiled as if it were
    the graded function of `function`'s file."""
    rel, _, qualname = function.partition(":")
    *classes, name = qualname.split(".")
    source, indent = "", ""
    for cls in classes:
        source += f"{indent}class {cls}:\n"
        indent += "    "
    source += f"{indent}def {name}(*args):\n{indent}    return __shop__(*args)\n"
    scope = {"__shop__": shop}
    exec(compile(source, str(HANDOUT / rel), "exec"), scope)
    target = scope[classes[0]] if classes else scope[name]
    for cls in classes[1:]:
        target = getattr(target, cls)
    return getattr(target, name) if classes else target


def owner_of(function: str):
    rel, _, qualname = function.partition(":")
    target = importlib.import_module(rel.removesuffix(".py").replace("/", "."))
    *path, name = qualname.split(".")
    for attribute in path:
        target = getattr(target, attribute)
    return target, name


def arity(function: str) -> int:
    owner, name = owner_of(function)
    parameters = inspect.signature(inspect.unwrap(vars(owner)[name])).parameters.values()
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters)


def choices(candidate, n: int) -> list[tuple[int, ...]]:
    try:
        parameters = inspect.signature(candidate).parameters.values()
    except (TypeError, ValueError):
        return [tuple(range(n))]
    if any(p.kind == p.VAR_POSITIONAL for p in parameters):
        return [tuple(range(n))]
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = sum(p.default is p.empty for p in positional)
    return [c for k in range(required, min(len(positional), n) + 1)
            for c in itertools.combinations(range(n), k)]


def run_case(case, producers, guard: CallGuard, reference) -> float:
    guard.arm(case.plan_entry())
    signal.alarm(CALL_SECONDS)
    try:
        arrays, error = producers[case.producer](case.params), None
    except BaseException as caught:  # noqa: B036  (as the child: every exception is an answer)
        arrays, error = None, caught
    finally:
        signal.alarm(0)
        refused = guard.disarm()
    if error is not None or refused:
        return 0.0
    path = Path("output.npz")
    try:
        npzio.save(path, arrays)
    except (TypeError, ValueError, AttributeError):
        return 0.0
    return judge_case(case, CaseRun("done", 0.0, output=path.read_bytes()), reference).score


def main(solutions_path: str, out_path: str, *only: str) -> None:
    torch.set_num_threads(1)
    signal.signal(signal.SIGALRM, stop)
    trusted.bind(load_solutions(solutions_path, required=True))
    chosen = assignment(HANDOUT)
    cases = all_cases(include_hidden=False, parts=tuple(chosen["parts"]))
    reference = npzio.load(HANDOUT / "autograder" / "reference" / "visible.npz")
    producers = registry()
    functions = sorted({case.grades[0] for case in cases if len(case.grades) == 1
                        and (not only or case.grades[0] in only)})
    found = candidates(handout_modules(chosen["gradable"]),
                       {graded_name(f) for f in functions})
    guard = CallGuard(str(HANDOUT))
    shop, tried, calls, scored = Shop(), 0, 0, []
    for function in functions:
        own = [case for case in cases if case.grades == (function,)]
        owner, name = owner_of(function)
        original, n = vars(owner)[name], arity(function)
        setattr(owner, name, stand_in(function, shop))
        try:
            shop.seen, shop.candidate = None, lambda *args: None
            run_case(own[0], producers, guard, reference)  # keeps the arguments it gets
            for label, candidate in found.items():
                shop.candidate = candidate
                for choice in choices(candidate, n):
                    calls += 1
                    glues = tensor_glues(candidate, choice, shop.seen) if shop.seen else []
                    shop.choice = choice
                    for glue_name in glues:
                        shop.glue = GLUES[glue_name]
                        tried += 1
                        for case in own:
                            score = run_case(case, producers, guard, reference)
                            if score > 0:
                                scored.append(f"{function}: {label}{choice} + {glue_name} "
                                              f"scored {score} on {case.name}")
        finally:
            setattr(owner, name, original)
    Path(out_path).write_text(json.dumps({"tried": tried, "calls": calls,
                                          "functions": functions, "scored": scored}, indent=1))


if __name__ == "__main__":
    main(*ARGUMENTS)

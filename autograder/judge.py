"""The trusted judge: score each case from the plain arrays the child left behind.

For every array the reference holds, in this order: the output must exist, have the
reference's dtype and shape, be finite wherever the reference is, and then agree within
`|out - ref| <= atol + rtol * |ref|`.  Feedback names the array, the shapes, the largest
absolute difference and the first mismatching index, never a reference value.  A case
scores all its points or none.  Arrays whose key starts with "_" are notes, not scored:
the module's parameter names (`PARAMETER_NAMES`) are compared with the reference model's,
and the feedback lists the ones the grader did not expect and the ones it missed; the
producer's `NOTES` (e.g. a trusted stand-in that ignored extra arguments) are shown.

Before any array, the source of each function a case grades is scanned (`refused_uses`):
a name, import or string in it that resolves to one of the case's refused calls
(its case module's FORBIDDEN) scores the case 0, naming the file, line and call.
(The child refuses the same calls at run time, when made through any other function.)
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autograder import npzio
from autograder.case import ALLOWED_CALLS, Case
from autograder.fences import parse
from autograder.producers import NOTES, PARAMETER_NAMES, names_from_array
from autograder.sandbox import CaseRun

MAX_FEEDBACK = 4000  # characters per case (Gradescope output is capped at 4 KB too)


@dataclass
class Verdict:
    case: Case
    score: float
    feedback: str
    seconds: float | None = None

    @property
    def passed(self) -> bool:
        return self.score >= self.case.points


def reference_arrays(reference: dict[str, np.ndarray], case: Case) -> dict[str, np.ndarray]:
    prefix = case.name + "/"
    return {k[len(prefix):]: v for k, v in reference.items() if k.startswith(prefix)}


def _index(flat_index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat_index, shape)) if shape else ()


def compare(key: str, out: np.ndarray, ref: np.ndarray, atol: float, rtol: float) -> str | None:
    """The problem with `out` as a stand-in for `ref`, or None when it matches."""
    if out.dtype != ref.dtype:
        return f"{key}: dtype {out.dtype}, expected {ref.dtype}"
    if out.shape != ref.shape:
        return f"{key}: shape {out.shape}, expected {ref.shape}"
    finite_ref = np.isfinite(ref)
    bad_finite = ~np.isfinite(out) & finite_ref
    if bad_finite.any():
        first = _index(int(np.flatnonzero(bad_finite)[0]), out.shape)
        return (f"{key}: {int(bad_finite.sum())} NaN/inf values where finite numbers were "
                f"expected (first at index {first}), shape {out.shape}")
    out64, ref64 = out.astype(np.float64), ref.astype(np.float64)
    diff = np.where(finite_ref, np.abs(out64 - ref64), 0.0)
    bad = diff > atol + rtol * np.abs(np.where(finite_ref, ref64, 0.0))
    if bad.any() or not finite_ref.all() and (out64[~finite_ref] != ref64[~finite_ref]).any():
        first = _index(int(np.flatnonzero(bad)[0]), out.shape) if bad.any() else "non-finite"
        return (f"{key}: values differ: max abs diff {diff.max():.3g}, "
                f"{int(bad.sum())} of {bad.size} elements outside atol={atol:g} rtol={rtol:g}, "
                f"first mismatching index {first}, shape {out.shape}")
    return None


def import_aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> the dotted name it imports, for every import of the file."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                aliases[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def dotted_names(node: ast.AST, aliases: dict[str, str]) -> list[tuple[int, str, bool]]:
    """(line, dotted name, whether it is a string) for every import, name chain and string
    inside `node`, names resolved through the file's imports
    ("F.scaled_dot_product_attention" -> "torch.nn.functional.scaled_dot_product_attention")."""
    found = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Import):
            found += [(sub.lineno, alias.name, False) for alias in sub.names]
        elif isinstance(sub, ast.ImportFrom) and sub.module and not sub.level:
            found += [(sub.lineno, f"{sub.module}.{alias.name}", False) for alias in sub.names]
        elif isinstance(sub, ast.Attribute | ast.Name):
            parts, head = [], sub
            while isinstance(head, ast.Attribute):
                parts.append(head.attr)
                head = head.value
            if isinstance(head, ast.Name):
                root = aliases.get(head.id, head.id)
                found.append((sub.lineno, ".".join([root, *reversed(parts)]), False))
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            found.append((sub.lineno, sub.value, True))
    return found


def find_function(tree: ast.AST, qualname: str) -> ast.AST | None:
    node: ast.AST | None = tree
    for name in qualname.split("."):
        node = next((child for child in ast.iter_child_nodes(node) if isinstance(
            child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and child.name == name),
            None)
        if node is None:
            return None
    return node


def is_call_name(name: str) -> bool:
    """Whether a refused name's last part names a function or class, not a module (modules
    are named in lowercase without underscores here: `torch.optim`, `transformers`)."""
    leaf = name.rsplit(".", 1)[-1]
    return "." in name and (leaf != leaf.lower() or "_" in leaf)


def refused(name: str, forbidden: tuple[str, ...], string: bool = False) -> str | None:
    """The refused call that `name` is or lies inside.  A function or class is refused by
    its last part too: as a string (`getattr(F, "scaled_dot_product_attention")`) or as
    the last part of any other chain (`torch.ops.aten.scaled_dot_product_attention`,
    `torch._scaled_dot_product_flash_attention`)."""
    if any(name == ok or name.startswith(ok + ".") for ok in ALLOWED_CALLS):
        return None
    leaf = name.rsplit(".", 1)[-1]
    for call in forbidden:
        if name == call or name.startswith(call + "."):
            return call
        if is_call_name(call):
            own = call.rsplit(".", 1)[-1]
            if name == own if string else "." in name and own in leaf:
                return call
    return None


def refused_uses(stage: Path, case: Case) -> list[str]:
    """'<file>:<line>: ...' for each use of a refused call in the source of a function
    `case` grades, as staged (a file that does not parse is left to the run)."""
    problems = []
    for function in case.grades if case.forbidden else ():
        rel, _, qualname = function.partition(":")
        try:
            names = function_names((stage / rel).read_text(), rel, qualname)
        except (OSError, SyntaxError, ValueError):
            continue
        for line, name, string in names:
            call = refused(name, case.forbidden, string)
            if call is not None:
                problems.append(f"{rel}:{line}: {qualname} uses {name}, which grading refuses "
                                f"in this function ({call} would do its job)")
    return problems


@functools.lru_cache(maxsize=256)
def function_names(source: str, rel: str, qualname: str) -> tuple[tuple[int, str, bool], ...]:
    """`dotted_names` of the function `qualname` in `source` (none where it is absent); kept
    for the latest sources, since every case of a function reads the same ones."""
    node = find_function(parse(source, rel), qualname)
    return () if node is None else tuple(dotted_names(node, file_aliases(source, rel)))


@functools.lru_cache(maxsize=64)
def file_aliases(source: str, rel: str) -> dict[str, str]:
    """`import_aliases` of a file, kept for the latest sources (callers only read it)."""
    return import_aliases(parse(source, rel))


def parameter_notes(produced: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> list[str]:
    """Lines on the parameter names of the student's module against the reference's."""
    if PARAMETER_NAMES not in expected or PARAMETER_NAMES not in produced:
        return []
    theirs = set(names_from_array(produced[PARAMETER_NAMES]))
    ours = set(names_from_array(expected[PARAMETER_NAMES]))
    unexpected, missing = sorted(theirs - ours), sorted(ours - theirs)
    notes = []
    if unexpected:
        notes.append(f"parameters the grader did not expect (ignored: every parameter is "
                     f"seeded from its own name, so they change no other weight): "
                     f"{unexpected[:20]}")
    if missing:
        notes.append(f"parameters the grader expected but your module lacks (the handout's "
                     f"names are part of the contract): {missing[:20]}")
    return notes


def check_dropout(key: str, train: np.ndarray, evaluated: np.ndarray, case: Case) -> str | None:
    """Training-mode output `train` against the eval-mode output of the same inputs, with
    dropout probability p = extra["p"]: each element is 0 or eval / (1 - p), whatever the
    draws, and about a fraction p of the elements that are not 0 in eval are 0 (on one-hot
    values an attention output row is the probabilities, and masked keys have probability
    0 in both modes).
    """
    if train.shape != evaluated.shape or train.dtype != evaluated.dtype:
        return f"{key}: shape {train.shape} / dtype {train.dtype}, expected {evaluated.shape} / {evaluated.dtype}"
    if not np.isfinite(train).all():
        return f"{key}: NaN/inf values in training mode"
    changed = np.abs(train.astype(np.float64) - evaluated) > 1e-6
    if not changed.any():
        return f"{key}: training-mode output equals the eval-mode output: is dropout applied?"
    p = case.extra["p"]
    zero = train == 0
    scaled = np.isclose(train, evaluated / (1 - p), atol=1e-5, rtol=1e-4)
    if not (zero | scaled).all():
        first = _index(int(np.flatnonzero(~(zero | scaled))[0]), train.shape)
        return (f"{key}: in training mode each element must be 0 or its eval-mode value / "
                f"(1 - p) with p={p}; the first other element is at index {first}")
    live = evaluated != 0
    dropped = zero[live].mean() if live.any() else 0.0
    if abs(dropped - p) > 0.1:
        return (f"{key}: {dropped:.2f} of the elements that are not 0 in eval mode are 0 "
                f"in training mode, expected about p={p}")
    return None


def judge_case(case: Case, run: CaseRun, reference: dict[str, np.ndarray],
               stage: Path | None = None) -> Verdict:
    """Score one case from its output snapshot and (when `stage` is given) the staged
    source of the functions it grades; every failure path still returns a Verdict with
    feedback."""
    expected = reference_arrays(reference, case)
    if not expected:
        return Verdict(case, 0.0, "no reference output for this case on this grader "
                                  "(run `python -m autograder build-reference`)")
    uses = refused_uses(stage, case) if stage is not None else []
    if uses:
        return Verdict(case, 0.0, "\n".join(uses)[:MAX_FEEDBACK], run.seconds)
    if run.status != "done":
        return Verdict(case, 0.0, f"{run.status}: {run.note}".strip(": "), run.seconds)
    if run.error is not None:
        return Verdict(case, 0.0, f"{run.error[:MAX_FEEDBACK]}\n(raised while the grader ran "
                                  "your code)", run.seconds)
    if run.output is None:
        return Verdict(case, 0.0, "no output file although the case was reported done",
                       run.seconds)
    try:
        produced = npzio.load(run.output, case.name)
    except ValueError as error:
        return Verdict(case, 0.0, f"no usable output: {error}", run.seconds)
    problems, notes = [], parameter_notes(produced, expected)
    notes += names_from_array(produced[NOTES]) if NOTES in produced else []
    for key, ref in expected.items():
        if key.startswith("_"):
            continue
        if key not in produced:
            problems.append(f"{key}: missing from the output")
        elif key in case.dropout_keys:
            eval_key = case.extra.get("eval_key", "out")
            problem = check_dropout(key, produced[key], expected[eval_key], case)
            problems += [problem] if problem else []
        else:
            problem = compare(key, produced[key], ref, case.atol, case.rtol)
            if problem:
                problems.append(problem)
            elif ref.size:
                diff = np.abs(produced[key].astype(np.float64) - ref.astype(np.float64))
                notes.append(f"{key}: ok, shape {ref.shape}, max abs diff "
                             f"{np.nanmax(np.where(np.isfinite(diff), diff, 0.0)):.2g}")
    extra = sorted(k for k in set(produced) - set(expected) if not k.startswith("_"))
    if extra:
        notes.append(f"unexpected arrays ignored: {extra[:10]}")
    if problems:
        return Verdict(case, 0.0, "\n".join(problems + notes)[:MAX_FEEDBACK], run.seconds)
    if case.time_limit_s is not None:
        timing = (f"took {run.seconds or 0.0:.2f}s (measured by the grader from outside), "
                  f"limit {case.time_limit_s:.2f}s")
        if (run.seconds or 0.0) > case.time_limit_s:
            return Verdict(case, 0.0, f"values correct but too slow: {timing}", run.seconds)
        notes.append(timing)
    return Verdict(case, case.points, "\n".join(notes)[:MAX_FEEDBACK], run.seconds)


def judge_all(cases: list[Case], runs: dict[str, CaseRun], reference: dict[str, np.ndarray],
              stage: Path | None = None) -> list[Verdict]:
    return [judge_case(case, runs.get(case.name, CaseRun("not_run")), reference, stage)
            for case in cases]

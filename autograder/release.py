"""Write the student handout: the reference tree with the assignment's fences stripped.

The code comes from `autograder/fences.py` (`write_code`: each fenced block of a chosen
part becomes a TODO, the others ship solved).  The release also writes `HANDOUT.md`,
`README.md` and, when the course file asks multiple-choice questions, `answers.toml`
(`autograder/document.py`), `autograder/assignment.json` (the parts and the files a
submission carries), and with `data` the student-facing course data into `data/`
(`autograder/release_data.py`).

`check_release` verifies the result: every file compiles and every module imports, no line
from inside a graded fence survives in ANY released file (the producers, the visible cases
and the handout's prose included; `significant` says which lines count), no staff-only
file is present, no hidden case or mutant is present and every case grades its own part's
functions (`case_problems`), no hidden label or held-out text is present
(`release_data.data_problems`), and every "handout N.M" a released file cites is a section
of HANDOUT.md or in a part that its appendix lists as shipping solved.
"""

from __future__ import annotations

import io
import keyword
import re
import runpy
import subprocess
import sys
import tokenize
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.fences import (
    Fence,
    fence_part,
    find_fences,
    handout_files,
    staff_only,
    write_code,
)
from autograder.manifest import HANDOUT_FILES, PARTS
from autograder.parts import ASSIGNMENT, assignment, part_of_function, write_assignment

if TYPE_CHECKING:
    from autograder.course import Course


def release(root: Path, out: Path, parts: tuple[str, ...] | None = None, *,
            data: Path | None = None, course: Course | None = None) -> list[str]:
    """Copy the handout files from `root` into `out` (which must not exist), the fences of
    the assignment's parts stripped, and write the documents (`autograder/document.py`),
    autograder/assignment.json and, from the course data folder `data` when given, the
    student-facing data (`release_data.release_data`).  The parts are `parts` when given,
    else the course file's (`course`), else every part.  Returns the relative paths
    written."""
    from autograder.course import default_course
    from autograder.document import write_documents
    from autograder.release_data import release_data

    if out.exists():
        raise FileExistsError(f"{out} already exists; pass a new folder to --out")
    course = course or default_course()
    chosen = assignment(root, parts or course.parts)
    written = write_code(root, out, tuple(chosen["parts"]))
    write_assignment(out, chosen)
    course = replace(course, parts=tuple(chosen["parts"]))
    written += [ASSIGNMENT, *write_documents(root, out, course)]
    if data is not None:
        written += release_data(data, out)
    return written


def code_lines(text: str, python: bool) -> list[str]:
    """Each line of `text` as the leak check compares it: without its comment (`python`:
    found with `tokenize`), stripped, each run of whitespace one space."""
    lines = text.splitlines()
    if python:
        try:
            for token in tokenize.generate_tokens(io.StringIO(text).readline):
                if token.type == tokenize.COMMENT:
                    row, column = token.start
                    lines[row - 1] = lines[row - 1][:column]
        except (tokenize.TokenError, SyntaxError):
            pass  # not Python after all: compared with its comments
    return [" ".join(line.split()) for line in lines]


def significant(line: str) -> bool:
    """Whether a line of a fence counts as solution text: it holds at least two names or
    numbers other than Python keywords and `self`.  So blank lines, comments, brackets,
    `pass`, `else:`, `return out` and `self.merged = True` never count; `return
    (self.lora_B @ self.lora_A) * self.scaling` and `counts, where = {}, {}` do."""
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+", line)
    return sum(not keyword.iskeyword(word) and word != "self" for word in words) >= 2


def solution_lines(root: Path, parts: tuple[str, ...] | None = None) -> dict[str, Fence]:
    """Normalised line (`code_lines`) -> the fence of `parts` (default: every part) it
    comes from, for every `significant` line inside such a fence that its own file does
    not also hold outside them (a line the handout shows anyway is no secret)."""
    parts = tuple(PARTS) if parts is None else parts
    secret: dict[str, Fence] = {}
    for rel in HANDOUT_FILES:
        if not rel.endswith(".py"):
            continue
        text = (root / rel).read_text()
        fences = [f for f in find_fences(rel, text) if fence_part(f) in parts]
        inside: dict[str, Fence] = {}
        outside = set()
        for number, line in enumerate(code_lines(text, python=True), start=1):
            fence = next((f for f in fences if f.begin < number < f.end), None)
            if fence is None:
                outside.add(line)
            elif significant(line):
                inside.setdefault(line, fence)
        for line, fence in inside.items():
            if line not in outside:
                secret.setdefault(line, fence)
    return secret


def fenced_lines(root: Path, parts: tuple[str, ...] | None = None) -> dict[str, set[str]]:
    """rel path -> its `solution_lines` (normalised) of fences of `parts`."""
    result: dict[str, set[str]] = {}
    for line, fence in solution_lines(root, parts).items():
        result.setdefault(fence.path, set()).add(line)
    return result


def find_leaks(secret: dict[str, Fence], folder: Path) -> list[str]:
    """'<file>:<line>: ...' for every line of every text file under `folder` that is a
    solution line of `secret` (`solution_lines`), naming the fence it comes from."""
    problems = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary (.npy, .npz): no source text in it
        rel = path.relative_to(folder).as_posix()
        for number, line in enumerate(code_lines(text, rel.endswith(".py")), start=1):
            if line in secret:
                fence = secret[line]
                problems.append(f"{rel}:{number}: solution line survives (from the fence of "
                                f"{fence.path} {fence.qualname} at line {fence.begin}): "
                                f"{line!r}")
    return problems


def case_problems(root: Path, out: Path) -> list[str]:
    """Each case grades fenced functions of its case module's part (their docstrings in
    `root` cite that part's section), and each released case module holds exactly the
    visible cases of the staff one, and no mutants: its staff block is gone."""
    from autograder.case import all_cases, case_modules

    problems = []
    for case in all_cases():
        if not case.grades:
            problems.append(f"case {case.name} (autograder/cases/{case.part}.py) grades no "
                            "function: name them in grades=")
        for function in case.grades:
            part = part_of_function(root, function)
            if part != case.part:
                problems.append(f"case {case.name} is in autograder/cases/{case.part}.py but "
                                f"grades {function} of part {part!r}: move it to "
                                f"autograder/cases/{part}.py")
    for part, module in case_modules().items():
        rel = f"autograder/cases/{part}.py"
        shipped = runpy.run_path(str(out / rel))
        names = [case.name for case in shipped.get("CASES", ())]
        visible = [case.name for case in module.CASES if case.visible]
        if names != visible or "MUTANTS" in shipped:
            problems.append(f"{rel}: the handout's copy holds cases {names} (and mutants: "
                            f"{'MUTANTS' in shipped}), but the visible cases are {visible}: "
                            "a visible case goes above ### BEGIN STAFF, a hidden case and "
                            "the mutants inside the staff block")
    return problems


def check_release(root: Path, out: Path) -> list[str]:
    """Problems with the handout in `out` (empty when it is sound): see the module
    docstring.  A solution line is looked for in every released file, not only in the
    fence's own (`find_leaks`)."""
    from autograder.document import unresolved_citations
    from autograder.release_data import data_problems

    problems = find_leaks(solution_lines(root, tuple(assignment(out)["parts"])), out)
    for path in out.rglob("*"):
        rel = path.relative_to(out).as_posix()
        if staff_only(rel):
            problems.append(f"staff-only file in the handout: {rel}")
    modules = [rel[:-3].replace("/", ".").removesuffix(".__init__")
               for rel in handout_files(root) if rel.endswith(".py")]
    script = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    result = subprocess.run([sys.executable, "-c", script, *modules], cwd=out,
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        problems.append(f"handout modules do not import:\n{result.stderr[-2000:]}")
    return (problems + case_problems(root, out) + data_problems(root, out)
            + unresolved_citations(out))

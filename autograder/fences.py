"""Fenced functions: what a student writes, and the code tree with those fences stripped.

A fenced block is the lines between `### BEGIN SOLUTION` and `### END SOLUTION` (each
alone on its line).  It becomes, at the indentation of the BEGIN line:

    ### YOUR CODE HERE
    raise NotImplementedError("TODO models/gpt2.py GPT2Model.embed (handout 3.3)")

The function is found with `ast` (the innermost def around the fence); the handout
section comes from "(handout X.Y)" in its docstring, and the section names its part (the
part whose section is the longest dotted prefix, `autograder.manifest.PARTS`).  A fence of
a part the assignment leaves out ships solved: only its two marker lines go.

This is the grading runtime's layer: grading in the staff tree stages the code with
`write_code`, as the release does (`autograder/release.py`, which adds the documents, the
data and its checks on top).
"""

from __future__ import annotations

import ast
import functools
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from autograder.manifest import HANDOUT_FILES, HANDOUT_FOLDERS, PARTS, STAFF_ONLY

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
# A staff block (a case module's hidden cases and mutants) leaves no line in the handout.
STAFF_BEGIN, STAFF_END = "### BEGIN STAFF", "### END STAFF"
CITATION = re.compile(r"\(handout ([0-9]+(?:\.[0-9]+)*)\)")
PARSING = threading.Lock()  # every ast.parse of the grader, numpy .npy headers included


def parse(source: str | bytes, path: str) -> ast.Module:
    """`ast.parse`, one thread at a time: CPython 3.11 keeps the AST constructor's recursion
    depth in shared state, so two threads parsing at once (`grade-all --jobs`) can raise
    "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905).

    The trees of the latest sources are kept (one grading reads each file many times):
    callers read a tree and never change it."""
    with PARSING:
        return _parse(source, path)


@functools.lru_cache(maxsize=256)
def _parse(source: str | bytes, path: str) -> ast.Module:
    return ast.parse(source, filename=path)


@dataclass
class Fence:
    """One fenced block: 1-based line numbers of its BEGIN and END lines."""

    path: str
    begin: int
    end: int
    qualname: str
    section: str | None

    @property
    def todo(self) -> str:
        where = f" (handout {self.section})" if self.section else ""
        return f"TODO {self.path} {self.qualname}{where}"


def functions(source: str, path: str) -> list[tuple[int, int, str, str | None]]:
    """(first line, last line, qualname, the section its docstring cites or None) of every
    def in `source`, methods as "Class.name"."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    match = CITATION.search(ast.get_docstring(child) or "")
                    found.append((child.lineno, child.end_lineno, name,
                                  match.group(1) if match else None))
                visit(child, name + ".")

    visit(parse(source, path), "")
    return found


def function_sections(source: str, path: str) -> dict[str, str | None]:
    """qualname -> the section its docstring cites (None when it cites none), every def."""
    return {name: section for _, _, name, section in functions(source, path)}


def part_of_section(section: str, where: str) -> str:
    """The part whose section is the longest dotted prefix of `section`."""
    matches = [name for name, part in PARTS.items()
               if section == part.section or section.startswith(part.section + ".")]
    if not matches:
        raise ValueError(f"{where}: section {section} belongs to no part of "
                         "autograder/manifest.py PARTS")
    return max(matches, key=lambda name: len(PARTS[name].section))


def find_fences(path: str, text: str) -> list[Fence]:
    """Every fenced block of a file; ValueError (naming file:line) when they are unbalanced
    or sit outside a function."""
    defs = functions(text, path)
    fences, begin = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if begin is not None:
                raise ValueError(f"{path}:{number}: nested {BEGIN} (open since line {begin})")
            begin = number
        elif marker == END:
            if begin is None:
                raise ValueError(f"{path}:{number}: {END} without {BEGIN}")
            around = [f for f in defs if f[0] <= begin <= f[1]]
            if not around:
                raise ValueError(f"{path}:{begin}: fenced block outside any function")
            _, _, qualname, section = max(around, key=lambda f: f[0])
            fences.append(Fence(path, begin, number, qualname, section))
            begin = None
    if begin is not None:
        raise ValueError(f"{path}:{begin}: {BEGIN} is never closed")
    return fences


def fence_part(fence: Fence) -> str:
    """The part a fence belongs to (its docstring must cite a section)."""
    if fence.section is None:
        raise ValueError(f"{fence.path}:{fence.begin}: {fence.qualname} cites no "
                         "'(handout N.M)' in its docstring, so it belongs to no part")
    return part_of_section(fence.section, f"{fence.path} {fence.qualname}")


def fenced_functions(root: Path) -> dict[str, str]:
    """"<file>:<qualname>" -> part, for every fenced function of the handout files."""
    return {f"{fence.path}:{fence.qualname}": fence_part(fence)
            for rel in HANDOUT_FILES if rel.endswith(".py")
            for fence in find_fences(rel, (root / rel).read_text())}


def strip_fences(path: str, text: str, parts: tuple[str, ...] | None = None) -> str:
    """The handout version of a file's text: fences of `parts` (all when None) become
    TODOs; the other fences keep their code and lose their marker lines."""
    lines = text.splitlines(keepends=True)
    for fence in reversed(find_fences(path, text)):
        if parts is not None and fence_part(fence) not in parts:
            del lines[fence.end - 1]
            del lines[fence.begin - 1]
            continue
        first = lines[fence.begin - 1]
        indent = first[: len(first) - len(first.lstrip())]
        lines[fence.begin - 1 : fence.end] = [
            f"{indent}### YOUR CODE HERE\n",
            f"{indent}raise NotImplementedError({fence.todo!r})\n",
        ]
    return "".join(lines)


def strip_staff(path: str, text: str) -> str:
    """`text` without its staff blocks (the marker lines included), and without the blank
    lines a block at the end leaves behind; ValueError naming file:line when the markers
    are unbalanced."""
    kept, begin = [], None
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        marker = line.strip()
        if marker == STAFF_BEGIN:
            if begin is not None:
                raise ValueError(f"{path}:{number}: nested {STAFF_BEGIN} (open since line {begin})")
            begin = number
        elif marker == STAFF_END:
            if begin is None:
                raise ValueError(f"{path}:{number}: {STAFF_END} without {STAFF_BEGIN}")
            begin = None
        elif begin is None:
            kept.append(line)
    if begin is not None:
        raise ValueError(f"{path}:{begin}: {STAFF_BEGIN} is never closed")
    shipped = "".join(kept)
    return shipped if shipped == text else shipped.rstrip("\n") + "\n"


def staff_only(rel: str) -> bool:
    """Whether `rel` (a path relative to the root) is declared STAFF_ONLY."""
    return any(rel == s.rstrip("/") or rel.startswith(s) for s in STAFF_ONLY)


def handout_files(root: Path) -> list[str]:
    """HANDOUT_FILES and every .py file of HANDOUT_FOLDERS in the tree at `root` that is not
    STAFF_ONLY."""
    found = [path.relative_to(root).as_posix() for folder in HANDOUT_FOLDERS
             for path in sorted((root / folder).glob("*.py"))]
    return list(HANDOUT_FILES) + [rel for rel in found
                                  if rel not in HANDOUT_FILES and not staff_only(rel)]


def write_code(root: Path, out: Path, parts: tuple[str, ...]) -> list[str]:
    """Copy the handout files from `root` into `out`, the fences of `parts` stripped (the
    others ship solved) and the staff blocks dropped; FileNotFoundError naming a missing
    one.  Returns the relative paths written."""
    written = []
    for rel in handout_files(root):
        source = root / rel
        if not source.is_file():
            raise FileNotFoundError(f"handout file {rel} is missing from {root}")
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".py"):
            target.write_text(strip_fences(rel, strip_staff(rel, source.read_text()), parts))
        else:
            shutil.copy2(source, target)
        written.append(rel)
    return written

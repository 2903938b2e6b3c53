"""Write the student handout: the reference tree with every fenced block replaced.

A fenced block is the lines between `### BEGIN SOLUTION` and `### END SOLUTION` (each
alone on its line).  It becomes, at the indentation of the BEGIN line:

    ### YOUR CODE HERE
    raise NotImplementedError("TODO models/gpt2.py GPT2Model.embed (handout 3.3)")

The function is found with `ast` (the innermost def around the fence); the handout
section comes from "(handout X.Y)" in its docstring.  `check_release` verifies the result:
every file compiles and every module imports, no line from inside a fence survives, no
staff-only file is present.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from autograder.manifest import HANDOUT_FILES, STAFF_ONLY

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
SECTION = re.compile(r"\(handout ([0-9.]+)\)")


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


def _functions(tree: ast.AST) -> list[tuple[int, int, str, str | None]]:
    """(first line, last line, qualname, handout section) of every def in `tree`."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    match = SECTION.search(ast.get_docstring(child) or "")
                    found.append((child.lineno, child.end_lineno, name,
                                  match.group(1) if match else None))
                visit(child, name + ".")

    visit(tree, "")
    return found


def find_fences(path: str, text: str) -> list[Fence]:
    """Every fenced block of a file; ValueError (naming file:line) when they are unbalanced
    or sit outside a function."""
    functions = _functions(ast.parse(text, filename=path))
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
            around = [f for f in functions if f[0] <= begin <= f[1]]
            if not around:
                raise ValueError(f"{path}:{begin}: fenced block outside any function")
            first, _, qualname, section = max(around, key=lambda f: f[0])
            fences.append(Fence(path, begin, number, qualname, section))
            begin = None
    if begin is not None:
        raise ValueError(f"{path}:{begin}: {BEGIN} is never closed")
    return fences


def strip_fences(path: str, text: str) -> str:
    """The handout version of a file's text."""
    lines = text.splitlines(keepends=True)
    for fence in reversed(find_fences(path, text)):
        indent = lines[fence.begin - 1][: len(lines[fence.begin - 1]) - len(lines[fence.begin - 1].lstrip())]
        lines[fence.begin - 1 : fence.end] = [
            f"{indent}### YOUR CODE HERE\n",
            f"{indent}raise NotImplementedError({fence.todo!r})\n",
        ]
    return "".join(lines)


def release(root: Path, out: Path) -> list[str]:
    """Copy the handout files from `root` into `out` (which must not exist), fences
    stripped.  Returns the relative paths written."""
    if out.exists():
        raise FileExistsError(f"{out} already exists; pass a new folder to --out")
    written = []
    for rel in HANDOUT_FILES:
        source = root / rel
        if not source.is_file():
            raise FileNotFoundError(f"handout file {rel} is missing from {root}")
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".py"):
            target.write_text(strip_fences(rel, source.read_text()))
        else:
            shutil.copy2(source, target)
        written.append(rel)
    return written


def fenced_lines(root: Path) -> dict[str, set[str]]:
    """rel path -> the stripped non-empty lines that occur only inside fences of that file."""
    result = {}
    for rel in HANDOUT_FILES:
        if not rel.endswith(".py"):
            continue
        lines = (root / rel).read_text().splitlines()
        inside, outside = set(), set()
        fences = find_fences(rel, "\n".join(lines))
        for number, line in enumerate(lines, start=1):
            in_fence = any(f.begin < number < f.end for f in fences)
            (inside if in_fence else outside).add(line.strip())
        result[rel] = {line for line in inside - outside if line and not line.startswith("#")}
    return result


def check_release(root: Path, out: Path) -> list[str]:
    """Problems with the handout in `out` (empty when it is sound)."""
    problems = []
    secret = fenced_lines(root)
    for rel, lines in secret.items():
        released = {line.strip() for line in (out / rel).read_text().splitlines()}
        for line in sorted(lines & released):
            problems.append(f"{rel}: solution line survives: {line!r}")
    for path in out.rglob("*"):
        rel = path.relative_to(out).as_posix()
        if any(rel == s.rstrip("/") or rel.startswith(s) for s in STAFF_ONLY):
            problems.append(f"staff-only file in the handout: {rel}")
    modules = [rel[:-3].replace("/", ".").removesuffix(".__init__")
               for rel in HANDOUT_FILES if rel.endswith(".py")]
    script = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    result = subprocess.run([sys.executable, "-c", script, *modules], cwd=out,
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        problems.append(f"handout modules do not import:\n{result.stderr[-2000:]}")
    return problems

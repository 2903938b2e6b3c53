"""Read a submission (a zip or a folder) defensively, keeping only the files the assignment
grades (its gradable and prediction files, and the answers to its questions).

Nothing is extracted to disk here: the wanted files are read into memory, after checks.
A zip member with an absolute path, a `..` component or a link is refused; a member (or the
whole archive) that unpacks to more than the caps is refused, whatever its header claims;
folders are walked without following links or entering hidden folders (`.venv`, `.git`),
and only the first `MAX_ENTRIES` entries are looked at.  A submission zipped with one top folder (`mywork/models/gpt2.py`) is accepted.
Every other file is listed as ignored.

`refuse_grader_names` then refuses a submission whose code imports or names the grader's
own package (`import autograder...`, a name `autograder`, a string "autograder" or
"autograder.<module>"): student code runs in the same process as the producers.  It reads
the source only (a name built at run time passes); the child forgets the package before
student code loads (`autograder/child.py`), which is what stops the rest.
"""

from __future__ import annotations

import ast
import os
import re
import stat
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from autograder.fences import parse

MAX_FILE_BYTES = 8 << 20  # a single wanted file
MAX_TOTAL_BYTES = 64 << 20  # all wanted files together
MAX_ENTRIES = 20_000  # entries looked at in a zip or folder
GRADER_PACKAGE = "autograder"
_GRADER_MODULE = re.compile(rf"{GRADER_PACKAGE}(\.[A-Za-z_.]*)?")


class SubmissionError(Exception):
    """The submission cannot be graded at all (the message says why)."""


def _strip_top_folder(names: list[str], wanted: frozenset[str]) -> str:
    """'' or the one top folder that every wanted file sits under."""
    if any(name in wanted for name in names):
        return ""
    tops = {name.split("/", 1)[0] for name in names if "/" in name}
    for top in tops:
        if any(name[len(top) + 1:] in wanted for name in names if name.startswith(top + "/")):
            return top + "/"
    return ""


def _summary(ignored: list[str]) -> list[str]:
    if not ignored:
        return []
    shown = ", ".join(ignored[:15]) + (f", ... ({len(ignored) - 15} more)" if len(ignored) > 15 else "")
    return [f"ignored {len(ignored)} file(s) that are not gradable: {shown}"]


def _read_capped(handle, name: str, total: int) -> bytes:
    data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise SubmissionError(f"{name}: larger than {MAX_FILE_BYTES >> 20} MB once unpacked")
    if total + len(data) > MAX_TOTAL_BYTES:
        raise SubmissionError(f"submission larger than {MAX_TOTAL_BYTES >> 20} MB once unpacked")
    return data


def read_zip(path: Path, wanted: frozenset[str]) -> tuple[dict[str, bytes], list[str]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise SubmissionError(f"{path.name} is not a readable zip file ({error})") from error
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ENTRIES:
            raise SubmissionError(f"{path.name} holds {len(members)} entries (limit {MAX_ENTRIES})")
        for member in members:
            name = member.filename
            parts = PurePosixPath(name.replace("\\", "/")).parts
            if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
                raise SubmissionError(f"refused zip member with an absolute path: {name!r}")
            if ".." in parts:
                raise SubmissionError(f"refused zip member with '..' in its path: {name!r}")
            if stat.S_ISLNK(member.external_attr >> 16):
                raise SubmissionError(f"refused zip member that is a symbolic link: {name!r}")
        names = [m.filename for m in members if not m.is_dir()]
        top = _strip_top_folder(names, wanted)
        files, ignored, total = {}, [], 0
        for member in members:
            if member.is_dir():
                continue
            rel = member.filename[len(top):] if member.filename.startswith(top) else member.filename
            if rel not in wanted:
                ignored.append(member.filename)
                continue
            with archive.open(member) as handle:
                files[rel] = _read_capped(handle, rel, total)
            total += len(files[rel])
    return files, _summary(ignored)


def read_folder(path: Path, wanted: frozenset[str]) -> tuple[dict[str, bytes], list[str]]:
    entries, notes = [], []
    for folder, dirs, names in os.walk(path, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in sorted(names) + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            entries.append(os.path.relpath(os.path.join(folder, name), path).replace(os.sep, "/"))
        if len(entries) > MAX_ENTRIES:
            notes.append(f"more than {MAX_ENTRIES} entries: the rest were not looked at")
            break
    top = _strip_top_folder(entries, wanted)
    files, ignored, total = {}, [], 0
    for entry in entries[:MAX_ENTRIES]:
        rel = entry[len(top):] if entry.startswith(top) else entry
        full = path / entry
        if rel not in wanted:
            ignored.append(entry)
        elif full.is_symlink() or not full.is_file():
            notes.append(f"refused {entry}: a link or not a regular file")
        else:
            with open(full, "rb") as handle:
                files[rel] = _read_capped(handle, rel, total)
            total += len(files[rel])
    return files, notes + _summary(ignored)


def read_submission(path: str | Path, wanted: Iterable[str]) -> tuple[dict[str, bytes], list[str]]:
    """(relative path -> bytes of every file of `wanted` the submission holds, notes for the
    report).

    Raises SubmissionError when the submission as a whole is refused.
    """
    path, wanted = Path(path), frozenset(wanted)
    if path.is_symlink():
        raise SubmissionError(f"{path} is a symbolic link")
    if path.is_dir():
        return read_folder(path, wanted)
    if path.is_file():
        return read_zip(path, wanted)
    raise SubmissionError(f"submission not found: {path}")


def _names_grader(node: ast.AST) -> bool:
    """Whether `node` imports or names the grader's package."""
    if isinstance(node, ast.Import):
        return any(_GRADER_MODULE.fullmatch(alias.name) for alias in node.names)
    if isinstance(node, ast.ImportFrom):
        return node.level == 0 and bool(_GRADER_MODULE.fullmatch(node.module or ""))
    if isinstance(node, ast.Name):
        return node.id == GRADER_PACKAGE
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and bool(
        _GRADER_MODULE.fullmatch(node.value))


def refuse_grader_names(files: dict[str, bytes]) -> None:
    """SubmissionError naming the file and line where a `.py` file of `files` imports or
    names the grader's package (a file that does not parse is left to the child, which
    reports its SyntaxError as the case's error)."""
    for rel, data in sorted(files.items()):
        if not rel.endswith(".py"):
            continue
        try:
            tree = parse(data, rel)
        except (SyntaxError, ValueError):
            continue
        found = sorted(node.lineno for node in ast.walk(tree) if _names_grader(node))
        if found:
            raise SubmissionError(f"refused: {rel}:{found[0]} imports or names the grader's "
                                  f"package {GRADER_PACKAGE!r}; student code may not")

"""The course data of a release (`release --data DIR`), and the check that none of it is secret.

`DIR` is laid out as the course data folder `../shared/data` (its README): `cs224n/`,
`gpt2-tokenizer/`, `tinyshakespeare/`.  The handout's `data/` gets what students use:

- the splits, the label-free test files and the GPT-2 tokenizer files, written by the
  handout's own `data/prepare.py` without `--staff` (so no hidden labels are made);
- Tiny Shakespeare, `data/tinyshakespeare/input.txt`, the pretraining corpus.

The task scripts read `data/` by default and the pretraining scripts find the tokenizer and
Tiny Shakespeare there (`training/paths.py`), so a student passes no data flag.

`data_problems` refuses, in any released folder: a file named like a hidden label file or
holding the bytes of one of the staff tree's `autograder/hidden/` files; a test file with a
label column; a labelled file holding a test example's id (the test sets are carved from
labelled data); and any line of the graded test sonnets' prompts
(`data/sonnets_held_out.txt`) in another file (their full text is the hidden reference).
"""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

CORPUS = "tinyshakespeare/input.txt"
HIDDEN_NAME = re.compile(r"-(dev|test)-labels\.csv$|-test-true\.txt$")
LABEL_COLUMNS = ("sentiment", "is_duplicate", "label")
TEST_FILE, TEST_PROMPTS = "-test-student.csv", "data/sonnets_held_out.txt"


def release_data(source: Path, out: Path) -> list[str]:
    """Write the student-facing data of the course data folder `source` into `out/data`
    (see the module docstring); returns the paths written, relative to `out`.
    FileNotFoundError naming what is missing; RuntimeError with prepare's output when it
    fails."""
    missing = [rel for rel in ("cs224n", "gpt2-tokenizer", CORPUS) if not (source / rel).exists()]
    if missing:
        raise FileNotFoundError(f"--data {source}: missing {missing}; pass the course data "
                                "folder (in this project: ../shared/data)")
    before = {p for p in (out / "data").rglob("*") if p.is_file()}
    result = subprocess.run(
        [sys.executable, "-m", "data.prepare", "--from", str(source.resolve() / "cs224n"),
         "--tokenizer", str(source.resolve() / "gpt2-tokenizer"), "--out", "data"],
        cwd=out, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"data/prepare.py failed on {source}:\n{result.stdout[-2000:]}"
                           f"{result.stderr[-2000:]}")
    (out / "data" / CORPUS).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / CORPUS, out / "data" / CORPUS)
    return sorted(p.relative_to(out).as_posix() for p in (out / "data").rglob("*")
                  if p.is_file() and p not in before and "__pycache__" not in p.parts)


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a tab-separated course file."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    return (rows[0], rows[1:]) if rows else ([], [])


def _text_lines(path: Path) -> list[str] | None:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        return None


def data_problems(root: Path, out: Path) -> list[str]:
    """What in the released folder `out` is secret data (see the module docstring); `root`
    is the staff tree, whose `autograder/hidden/` files are compared byte for byte."""
    files = sorted(p for p in out.rglob("*") if p.is_file())
    hidden_dir = root / "autograder" / "hidden"
    hidden = {hashlib.sha256(p.read_bytes()).hexdigest(): p.name
              for p in (hidden_dir.rglob("*") if hidden_dir.is_dir() else []) if p.is_file()}
    problems, test_ids, labelled = [], set(), []
    for path in files:
        rel = path.relative_to(out).as_posix()
        if HIDDEN_NAME.search(path.name):
            problems.append(f"{rel}: named like a hidden label file")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in hidden:
            problems.append(f"{rel}: the hidden file autograder/hidden/{hidden[digest]}")
        if path.suffix != ".csv":
            continue
        header, rows = _rows(path)
        labels = [column for column in header if column in LABEL_COLUMNS]
        if path.name.endswith(TEST_FILE):
            if labels:
                problems.append(f"{rel}: a test file with label column(s) {labels}")
            if "id" in header:
                test_ids |= {row[header.index("id")] for row in rows if len(row) == len(header)}
        elif labels and "id" in header:
            labelled.append((rel, header, rows))
    for rel, header, rows in labelled:
        leaked = [row[header.index("id")] for row in rows
                  if len(row) == len(header) and row[header.index("id")] in test_ids]
        if leaked:
            problems.append(f"{rel}: labels of {len(leaked)} test example(s), e.g. id "
                            f"{leaked[0]}")
    prompts_path = out / TEST_PROMPTS
    prompts = {line.strip() for line in _text_lines(prompts_path) or []
               if line.strip() and not line.strip().isdigit()} if prompts_path.is_file() else set()
    for path in files:
        if path == prompts_path or not prompts:
            continue
        for number, line in enumerate(_text_lines(path) or [], start=1):
            if line.strip() in prompts:
                problems.append(f"{path.relative_to(out).as_posix()}:{number}: a line of a "
                                f"held-out test sonnet ({TEST_PROMPTS}): {line.strip()!r}")
                break
    return problems

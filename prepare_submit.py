"""Pack your submission for Gradescope: exactly the files the autograder grades.

    python prepare_submit.py                 # writes submission.zip
    python prepare_submit.py --code-only     # the code alone: no prediction files required
    python prepare_submit.py --course course.toml   # staff: the files of that assignment

The zip holds the files of your assignment's parts that `autograder/assignment.json` (of the
folder you pack, `--root`) lists (the code files with TODOs and, when the tasks are a part,
the prediction files), at the same paths as in this folder, and nothing else.  `--course
FILE` or `--parts P ...` name the assignment, as for every `python -m autograder` verb: a
handout refuses other parts than its own; the staff tree packs the files of those parts
(default: every part).  It refuses
when a required file is missing, warns about large files, and prints what it packed.
Upload the zip to Gradescope as is.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

from autograder.course import ANSWERS_FILE
from autograder.parts import chosen_assignment
from autograder.unpack import MAX_FILE_BYTES
from training.helpformat import HelpFormatter

WARN_BYTES = {".py": 256 << 10}  # code this large is unusual: check for pasted data
WARN_OTHER_BYTES = 4 << 20


def collect(root: Path, code_only: bool, course: str | None = None,
            parts: list[str] | None = None) -> tuple[list[str], list[str], list[str]]:
    """(files to pack, missing required files, warnings) of the tree at `root`: the
    assignment of `course`/`parts` (`autograder.parts.chosen_assignment`; in a handout its
    `autograder/assignment.json`) says which parts, so which files."""
    try:
        files, line = chosen_assignment(root, course, parts)
    except (OSError, ValueError) as error:
        raise ValueError(f"{root} is not a copy of the handout (its autograder/assignment.json "
                         f"says what to pack) nor of the staff tree: {error}") from error
    print(f"[prepare_submit] {line}")
    wanted = files["gradable"] + ([] if code_only else files["predictions"])
    if (root / ANSWERS_FILE).is_file():  # the multiple-choice answers, when the course asks
        wanted.append(ANSWERS_FILE)
    present = [rel for rel in wanted if (root / rel).is_file()]
    missing = [rel for rel in wanted if rel not in present]
    warnings = []
    for rel in present:
        size = (root / rel).stat().st_size
        limit = WARN_BYTES.get(Path(rel).suffix, WARN_OTHER_BYTES)
        if size > MAX_FILE_BYTES:
            missing.append(f"{rel} (too large: {size >> 20} MB; the grader refuses files over "
                           f"{MAX_FILE_BYTES >> 20} MB)")
        elif size > limit:
            warnings.append(f"{rel} is {size / 1e6:.1f} MB: is that intended?")
    return present, missing, warnings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--out", default="submission.zip", help="the zip to write")
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent),
                        help="your copy of the handout (default: this folder)")
    parser.add_argument("--code-only", action="store_true",
                        help="pack the code without the prediction files of the tasks")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--course", metavar="FILE", help="the course file: pack its parts")
    which.add_argument("--parts", nargs="+", metavar="PART",
                       help="the assignment's parts (default: the handout's own)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    try:
        present, missing, warnings = collect(root, args.code_only, args.course, args.parts)
    except ValueError as error:
        print(f"[prepare_submit] refusing: {error}")
        return 1
    for warning in warnings:
        print(f"[prepare_submit] warning: {warning}")
    if missing:
        print("[prepare_submit] refusing: required files are missing or unusable:")
        for rel in missing:
            print(f"  - {rel}")
        if any(rel.startswith("predictions/") for rel in missing):
            print("  (write the predictions with the scripts of section 6, or pass "
                  "--code-only)")
        return 1
    with zipfile.ZipFile(args.out, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel in present:
            archive.write(root / rel, rel)
            print(f"[prepare_submit] packed {rel} ({(root / rel).stat().st_size:,} bytes)")
    print(f"[prepare_submit] wrote {args.out} ({len(present)} files): upload it to Gradescope")
    return 0


if __name__ == "__main__":
    sys.exit(main())

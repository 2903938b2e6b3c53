"""`grade-all DIR --jobs N --csv gradebook.csv`: grade a whole class.

Every entry of DIR (a folder or a .zip per student, named after the student) is graded with
`grade.grade`, N at a time.  Each student's results.json goes to `--results DIR` (default:
beside the CSV, in `<csv stem>-results/`).  `grade` never raises, and any other failure is
caught per student, so one bad submission never stops the others: it gets a row with score
0 and the reason.  The CSV has one row per student, sorted by name, with the columns of
`report.csv_row` (submitters, score, maximum, late penalty, status, one per case).

A student's Gradescope `submission_metadata.json` (`metadata_path`: inside a folder entry,
or beside a zip as `<student>.submission_metadata.json`) gives the submitters' names, ids
and emails, and the submission time that the course file's late policy is applied to.

On a Slurm cluster, `autograder/grade_all.sbatch` grades one submission per array task;
`python -m autograder gradebook RESULTS --csv gradebook.csv` then merges their results.
"""

from __future__ import annotations

import csv
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from autograder import sandbox
from autograder.case import all_cases
from autograder.course import Course
from autograder.grade import Layout, grade
from autograder.isolation import isolation
from autograder.latepolicy import METADATA_FILE
from autograder.report import crash_results, csv_row, write_json


def submissions(folder: Path) -> list[Path]:
    """The student entries of `folder`: sub-folders and .zip files, hidden files skipped."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".")
                  and (p.is_dir() or p.suffix == ".zip"))


def metadata_path(entry: Path) -> Path | None:
    """The Gradescope metadata of a student entry, when it has one."""
    path = entry / METADATA_FILE if entry.is_dir() else entry.with_name(
        f"{entry.stem}.{METADATA_FILE}")
    return path if path.is_file() else None


def _grade_one(entry: Path, results_dir: Path, limits: sandbox.Limits,
               only: list[str] | None, layout: Layout | None,
               course: Course | None) -> dict:
    target = results_dir / f"{entry.stem}.json"
    try:
        return grade(entry, json_path=target, limits=limits, only=only, layout=layout,
                     course=course, metadata=metadata_path(entry))
    except BaseException as error:  # noqa: B036  (a row for this student, whatever happened)
        data = crash_results(f"{type(error).__name__}: {error}")
        write_json(target, data)
        return data


def grade_all(folder: Path, csv_path: Path, jobs: int = 1, results_dir: Path | None = None,
              only: list[str] | None = None, layout: Layout | None = None,
              course: Course | None = None) -> list[dict]:
    """Grade every submission in `folder` (the assignment of `layout`, default this tree's:
    `Layout.for_flags`) under `course` (visibility, late policy); write the gradebook;
    return its rows."""
    entries = submissions(folder)
    results_dir = results_dir or csv_path.with_name(csv_path.stem + "-results")
    results_dir.mkdir(parents=True, exist_ok=True)
    limits = sandbox.Limits()
    isolation()  # probe once, before the threads start
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {entry: pool.submit(_grade_one, entry, results_dir, limits, only,
                                      layout, course) for entry in entries}
        rows = [csv_row(entry.stem, futures[entry].result()) for entry in entries]
    write_gradebook(rows, csv_path)
    return rows


def write_gradebook(rows: list[dict], csv_path: Path) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def gradebook_from_results(results_dir: Path, csv_path: Path,
                           parts: list[str] | None = None) -> tuple[list[dict], list[str]]:
    """The gradebook of a folder of `<student>.json` results (e.g. from the Slurm array
    `autograder/grade_all.sbatch`); an unreadable file gives that student a 0 row.  Returns
    the rows and, when `parts` is given, '<file>: ...' for each result that holds cases of
    other parts (graded for another assignment)."""
    known = None if parts is None else {case.name for case in all_cases(parts=tuple(parts))}
    rows, foreign = [], []
    for path in sorted(results_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            data = crash_results(f"unreadable results file: {error}")
        rows.append(csv_row(path.stem, data))
        cases = {test.get("extra_data", {}).get("case", "") for test in data["tests"]}
        other = sorted(cases - (known or set()))
        other = [name for name in other if not name.startswith("predictions/")]
        if known is not None and other:
            foreign.append(f"{path}: cases outside parts {parts}: {other}")
    write_gradebook(rows, csv_path)
    return rows, foreign

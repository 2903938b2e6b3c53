"""The course file's late policy, applied from Gradescope's `submission_metadata.json`.

Gradescope writes `/autograder/submission_metadata.json` beside each submission
(https://gradescope-autograders.readthedocs.io/en/latest/submission_metadata/); the parts
read here:

    {"created_at": "2027-02-15T10:00:00.000000-08:00",         # the submission time
     "assignment": {"due_date": "...", "late_due_date": null, ...},
     "users": [{"name": "...", "email": "...", "sid": "...", "id": 1234}, ...],
     "previous_submissions": [{"submission_time": "...", "score": 0.0, ...}, ...]}

Each date is Gradescope's where the metadata has it (it carries per-student extensions),
else the course file's `[dates]`.  The rule
is the course file's (`autograder/course.py`): on time, no penalty; `d` started days after
the due date and before the late due date, `min(1, d * per_day)` of the score is taken off;
after the late due date, or late when there is no late due date, the score is 0.  Without
a course file there is no late policy: the metadata only names the submitters.
`apply_late_policy` states the penalty in the top-level output (its second line, after the
summary) and keeps the score before it, the penalty and the submitters in `extra_data`.
A bad metadata file raises ValueError naming the file and the key.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder.course import Course

METADATA_FILE = "submission_metadata.json"  # its name in Gradescope's /autograder


@dataclass(frozen=True)
class User:
    name: str
    sid: str  # the student id (Gradescope's `sid`; its user `id` when there is none)
    email: str


@dataclass(frozen=True)
class Metadata:
    created_at: dt.datetime
    due: dt.datetime | None
    late_due: dt.datetime | None
    users: tuple[User, ...]
    previous_submissions: int


@dataclass(frozen=True)
class Lateness:
    days: int  # started days after the due date (0: on time)
    fraction: float  # of the score taken off, in [0, 1]
    note: str  # the penalty in words ("" when on time)


def _time(value: Any, where: str) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueError(f"{where} = {value!r}: expected an ISO 8601 time with a UTC offset")
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise ValueError(f"{where} = {value!r}: {error}") from error
    if moment.tzinfo is None:
        raise ValueError(f"{where} = {value!r}: expected a UTC offset, e.g. -08:00")
    return moment


def parse_metadata(data: Any, source: str) -> Metadata:
    """The parts of a parsed submission_metadata.json this kit uses; ValueError naming
    `source` and the key when one is missing or malformed."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
    if "created_at" not in data:
        raise ValueError(f"{source}: missing key 'created_at' (the submission time)")
    created = _time(data["created_at"], f"{source}: created_at")
    assignment = data.get("assignment") or {}
    if not isinstance(assignment, dict):
        raise ValueError(f"{source}: assignment = {assignment!r}: expected an object")
    due, late_due = (_time(assignment[key], f"{source}: assignment.{key}")
                     if assignment.get(key) is not None else None
                     for key in ("due_date", "late_due_date"))
    users = data.get("users") or []
    if not isinstance(users, list) or not all(isinstance(u, dict) for u in users):
        raise ValueError(f"{source}: users = {users!r}: expected a list of objects")
    previous = data.get("previous_submissions") or []
    if not isinstance(previous, list):
        raise ValueError(f"{source}: previous_submissions = {previous!r}: expected a list")
    return Metadata(created, due, late_due,
                    tuple(User(str(u.get("name") or ""), str(u.get("sid") or u.get("id") or ""),
                               str(u.get("email") or "")) for u in users),
                    len(previous))


def read_metadata(path: str | Path) -> Metadata:
    """Read and check a submission_metadata.json; ValueError naming the file when bad."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise ValueError(f"{path}: no such submission metadata file") from error
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON: {error}") from error
    return parse_metadata(data, str(path))


def lateness(course: Course, metadata: Metadata) -> Lateness:
    """How late the submission is and what that costs under `course`'s policy."""
    due = metadata.due or course.due
    late_due = metadata.late_due or course.late_due
    if due is None or metadata.created_at <= due:
        return Lateness(0, 0.0, "")
    days = math.ceil((metadata.created_at - due) / dt.timedelta(days=1))
    when = (f"submitted {metadata.created_at.isoformat()}, due {due.isoformat()}: "
            f"{days} day{'s' if days != 1 else ''} late")
    if late_due is None or metadata.created_at > late_due:
        limit = f"after the late due date {late_due.isoformat()}" if late_due else \
            "and this assignment accepts no late submissions"
        return Lateness(days, 1.0, f"Late policy: {when}, {limit}; the score is 0.")
    fraction = min(1.0, days * course.late_per_day)
    return Lateness(days, fraction, f"Late policy: {when}; {days} x {course.late_per_day:g} "
                                    f"= {fraction:.0%} of the score is taken off.")


def apply_late_policy(data: dict, course: Course | None, metadata: Metadata) -> dict:
    """`data` (a results.json dict) with the penalty of `lateness` under `course` taken off
    its top-level score and stated in its output, after the summary line (no course file,
    `None`: no late policy).  `extra_data` gains `users` (name, sid, email of each
    submitter), `previous_submissions` (their number), `score_before_late_policy`,
    `late_days` and `late_penalty` (the fraction taken off)."""
    late = lateness(course, metadata) if course is not None else Lateness(0, 0.0, "")
    extra = dict(data.get("extra_data") or {})
    extra.update(users=[vars(user) for user in metadata.users],
                 previous_submissions=metadata.previous_submissions,
                 score_before_late_policy=data["score"], late_days=late.days,
                 late_penalty=late.fraction)
    out = dict(data, extra_data=extra)
    if late.fraction:
        out["score"] = round(data["score"] * (1.0 - late.fraction), 4)
        summary, *rest = data.get("output", "").split("\n", 1)
        out["output"] = "\n".join([summary, f"{late.note} Score {data['score']:g} -> "
                                             f"{out['score']:g}.", *rest])
    return out

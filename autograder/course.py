"""An assignment as a course file: `course.toml` (`python -m autograder init-course`).

The course file says what one assignment is, and every verb reads the same one (`release`,
`build`, `demo`, `check`, `grade`, `grade-all`, `gradebook`, `prepare_submit.py`), so the
staff tree and the Gradescope bundle grade a submission identically.  It holds:

- `[course]`: `name`, `term`, `parts` (a list of `autograder/manifest.py` PARTS);
- `[dates]`: `due` and `late_due`, TOML datetimes with a UTC offset (`late_due` >= `due`;
  without `late_due` nothing is accepted late);
- `[late_policy]`: `per_day`, the fraction of the score taken off per started day after
  `due` (0 <= per_day <= 1), until `late_due`; after `late_due` the score is 0;
- `[policies]`: `collaboration`, `honor_code`, `submit` (how and where to submit), markdown;
- `[visibility]`: `before_due`, "visible" (hidden results and the total show at once) or
  "after_due_date" (the hidden cases and the top-level score and output show only after the
  due date, through Gradescope's visibility);
- `[[written]]`: free-text questions, `id`, `points`, `question`: graded by hand on
  Gradescope, counted in the handout's points table;
- `[[choice]]`: multiple-choice ("check all that apply") questions, `id`, `points`,
  `question`, `options` (a list of texts) and `answer` (the 0-based indices of the right
  options, the hidden key).  Students answer in `answers.toml` (`id = [indices]`); the
  judge grades them against the key.

`Course.public()` is what may ship to students (no answer keys); the release writes it into
the handout's `autograder/assignment.json`.  A bad file raises `ValueError` naming the file
and the key.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.manifest import PARTS

COURSE_FILE = "course.toml"
ANSWERS_FILE = "answers.toml"
BEFORE_DUE = ("visible", "after_due_date")


@dataclass(frozen=True)
class Written:
    id: str
    points: float
    question: str


@dataclass(frozen=True)
class Choice:
    id: str
    points: float
    question: str
    options: tuple[str, ...]
    answer: tuple[int, ...] | None  # None in a student's copy (the key is hidden)


@dataclass(frozen=True)
class Course:
    name: str
    term: str
    parts: tuple[str, ...]
    due: dt.datetime | None = None
    late_due: dt.datetime | None = None
    late_per_day: float = 0.0
    collaboration: str = ""
    honor_code: str = ""
    submit: str = ""
    before_due: str = "visible"
    written: tuple[Written, ...] = ()
    choice: tuple[Choice, ...] = ()
    source: str = field(default="", compare=False)  # the file it was read from

    def public(self) -> dict[str, Any]:
        """The course as JSON-able data without the answer keys (ships to students)."""
        return {
            "name": self.name, "term": self.term, "parts": list(self.parts),
            "due": self.due.isoformat() if self.due else None,
            "late_due": self.late_due.isoformat() if self.late_due else None,
            "late_per_day": self.late_per_day, "collaboration": self.collaboration,
            "honor_code": self.honor_code, "submit": self.submit,
            "before_due": self.before_due,
            "written": [vars(q) for q in self.written],
            "choice": [{"id": q.id, "points": q.points, "question": q.question,
                        "options": list(q.options)} for q in self.choice],
        }


def default_course(parts: tuple[str, ...] | None = None) -> Course:
    """The assignment with no course file: the given parts (every part when None), no dates,
    no policies, everything visible."""
    return Course(name="Build GPT-2", term="", parts=tuple(parts or PARTS))


def _get(table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str,
         default: Any = None, required: bool = False) -> Any:
    if key not in table:
        if required:
            raise ValueError(f"{where}: missing key {key!r}")
        return default
    value = table[key]
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ValueError(f"{where}.{key} = {value!r}: expected a number")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ValueError(f"{where}.{key} = {value!r}: expected {names}")
    return value


def _date(table: dict[str, Any], key: str, where: str) -> dt.datetime | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValueError(f"{where}.{key} = {value!r}: expected a TOML date-time with a UTC "
                         "offset, e.g. 2027-02-14T23:59:00-08:00")
    return value


def _points(table: dict[str, Any], where: str) -> float:
    points = float(_get(table, "points", (int, float), where, required=True))
    if not points > 0:
        raise ValueError(f"{where}.points = {points!r}: expected a positive number")
    return points


def parse_course(data: dict[str, Any], source: str) -> Course:
    """A `Course` from parsed TOML `data`; ValueError naming `source` and the bad key."""
    known = {"course", "dates", "late_policy", "policies", "visibility", "written", "choice"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{source}: unknown tables {unknown}; expected some of {sorted(known)}")
    course = _get(data, "course", dict, source, required=True)
    where = f"{source}: [course]"
    parts = _get(course, "parts", list, where, required=True)
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts or len(set(parts)) != len(parts):
        raise ValueError(f"{where}.parts = {parts!r}: choose one or more of {list(PARTS)}, "
                         f"each once" + (f" (unknown: {bad})" if bad else ""))
    dates = _get(data, "dates", dict, source, default={})
    due, late_due = _date(dates, "due", f"{source}: [dates]"), _date(dates, "late_due",
                                                                     f"{source}: [dates]")
    if late_due and not due:
        raise ValueError(f"{source}: [dates].late_due needs a [dates].due")
    if due and late_due and late_due < due:
        raise ValueError(f"{source}: [dates].late_due {late_due.isoformat()} is before "
                         f"due {due.isoformat()}")
    late = _get(data, "late_policy", dict, source, default={})
    per_day = float(_get(late, "per_day", (int, float), f"{source}: [late_policy]", 0.0))
    if not 0.0 <= per_day <= 1.0:
        raise ValueError(f"{source}: [late_policy].per_day = {per_day!r}: expected a fraction "
                         "in [0, 1]")
    policies = _get(data, "policies", dict, source, default={})
    visibility = _get(data, "visibility", dict, source, default={})
    before_due = _get(visibility, "before_due", str, f"{source}: [visibility]", "visible")
    if before_due not in BEFORE_DUE:
        raise ValueError(f"{source}: [visibility].before_due = {before_due!r}: choose one of "
                         f"{list(BEFORE_DUE)}")
    if before_due == "after_due_date" and due is None:
        raise ValueError(f"{source}: [visibility].before_due = 'after_due_date' needs a "
                         "[dates].due")
    written, choice, ids = [], [], set()
    for i, q in enumerate(_get(data, "written", list, source, default=[])):
        where_q = f"{source}: [[written]] #{i + 1}"
        written.append(Written(_get(q, "id", str, where_q, required=True),
                               _points(q, where_q),
                               _get(q, "question", str, where_q, required=True)))
    for i, q in enumerate(_get(data, "choice", list, source, default=[])):
        where_q = f"{source}: [[choice]] #{i + 1}"
        options = _get(q, "options", list, where_q, required=True)
        answer = _get(q, "answer", list, where_q, required=True)
        if len(options) < 2 or not all(isinstance(o, str) for o in options):
            raise ValueError(f"{where_q}.options: expected two or more texts")
        if any(not isinstance(a, int) or isinstance(a, bool) or not 0 <= a < len(options)
               for a in answer) or len(set(answer)) != len(answer):
            raise ValueError(f"{where_q}.answer = {answer!r}: expected distinct option "
                             f"indices in 0 .. {len(options) - 1}")
        choice.append(Choice(_get(q, "id", str, where_q, required=True), _points(q, where_q),
                             _get(q, "question", str, where_q, required=True), tuple(options),
                             tuple(sorted(answer))))
    for q in [*written, *choice]:
        if q.id in ids:
            raise ValueError(f"{source}: question id {q.id!r} is used twice")
        ids.add(q.id)
    return Course(
        name=_get(course, "name", str, where, required=True),
        term=_get(course, "term", str, where, ""),
        parts=tuple(name for name in PARTS if name in parts),
        due=due, late_due=late_due, late_per_day=per_day,
        collaboration=_get(policies, "collaboration", str, f"{source}: [policies]", ""),
        honor_code=_get(policies, "honor_code", str, f"{source}: [policies]", ""),
        submit=_get(policies, "submit", str, f"{source}: [policies]", ""),
        before_due=before_due, written=tuple(written), choice=tuple(choice), source=source)


def load_course(path: str | Path) -> Course:
    """Read and check a course file; ValueError naming the file (and the key) when bad."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as error:
        raise ValueError(f"{path}: no such course file (write one with "
                         "`python -m autograder init-course`)") from error
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from error
    return parse_course(data, str(path))


EXAMPLE = '''\
# The course file: what one assignment is.  Every verb of `python -m autograder` takes it
# (`--course course.toml`), so the staff tree and the Gradescope bundle grade alike.

[course]
name = "CS 224N: Build GPT-2"
term = "Winter 2027"
# The parts graded in this assignment (the others ship solved), in any order; choose from
#   {parts}
parts = ["model", "optimizer"]

[dates]
# TOML date-times with a UTC offset.  After `due` the late policy applies; after
# `late_due` nothing is accepted (score 0).  Gradescope's submission_metadata.json gives
# the submission time.
due = 2027-02-14T23:59:00-08:00
late_due = 2027-02-17T23:59:00-08:00

[late_policy]
per_day = 0.1  # fraction of the score taken off per started day after `due`

[policies]
collaboration = """
You may discuss ideas with classmates, but write your code alone and name the people you
discussed the assignment with in your submission."""
honor_code = """
By submitting, you affirm that this is your own work, in keeping with the Honor Code."""
submit = """
Run `python prepare_submit.py` and upload the zip it writes to Gradescope
(assignment "Build GPT-2")."""

[visibility]
# "visible": hidden results and the total show at once; "after_due_date": only after `due`.
before_due = "after_due_date"

# Written questions, graded by hand on Gradescope (counted in the handout's points table).
[[written]]
id = "why_pre_ln"
points = 2
question = "Why does GPT-2 put layer norm before each sub-layer rather than after it?"

# Multiple-choice questions ("check all that apply"), answered in answers.toml as
#   attention_mask = [0, 2]
# and graded against `answer` (0-based indices; the key never ships to students).
[[choice]]
id = "attention_mask"
points = 1
question = "Which of these does the causal mask prevent? Check all that apply."
options = ["a token attending to a later token", "a token attending to itself",
           "a token attending to padding", "information flowing from the future"]
answer = [0, 3]
'''


def example() -> str:
    """The commented example course file that `init-course` writes."""
    text = EXAMPLE.format(parts=", ".join(PARTS))
    parse_course(tomllib.loads(text), "the example course file")
    return text

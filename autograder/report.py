"""Reports: Gradescope's results.json, the terminal table, and a gradebook CSV row.

results.json follows Gradescope's specification
(https://gradescope-autograders.readthedocs.io/en/latest/specs/) and holds only its keys:

- top level: `score`, `execution_time`, `output`, `visibility`, `stdout_visibility`,
  `extra_data` (ours: `max_score`, and from the late policy `autograder/latepolicy.py`),
  `tests`, `leaderboard` (each `name`, `value`);
- each test: `score`, `max_score`, `status`, `name`, `number`, `output`, `tags` (its case
  group), `visibility`, and `extra_data` with `case`: the name of the case or prediction
  task, so that tools never parse the feedback.

With the course file's `[visibility].before_due = "after_due_date"` the top-level
`visibility` is "after_due_date" (Gradescope then shows the total only after the due date)
and the top-level output states the visible cases' score, never the total; the visible
cases stay "visible", the hidden ones keep their own "after_due_date" or "hidden".  Every
test's output is capped at 4 KB.  The file is written atomically, and `crash_results`
gives a valid one (score 0 and the reason) when grading itself failed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course import Course, default_course

MAX_OUTPUT_BYTES = 4096


@dataclass
class TestResult:
    name: str
    number: str
    score: float
    max_score: float
    output: str
    visibility: str = "visible"
    group: str = ""
    case: str = ""  # the case's name ("attention/causal"), or the prediction task's

    @property
    def status(self) -> str:
        return "passed" if self.score >= self.max_score else "failed"


@dataclass
class Results:
    tests: list[TestResult]
    execution_time: float
    notes: list[str] = field(default_factory=list)
    leaderboard: list[dict] = field(default_factory=list)

    @property
    def score(self) -> float:
        return round(sum(t.score for t in self.tests), 4)

    @property
    def max_score(self) -> float:
        return round(sum(t.max_score for t in self.tests), 4)


def cap(text: str, limit: int = MAX_OUTPUT_BYTES) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, saying so when cut."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    marker = "\n[... output cut at 4 KB]"
    return data[: limit - len(marker.encode())].decode("utf-8", "ignore") + marker


def to_json(results: Results, course: Course | None = None) -> dict:
    """The results.json dict of `results` under `course`'s visibility (default: all
    visible)."""
    course = course or default_course()
    later = course.before_due == "after_due_date"
    if later:
        shown = [t for t in results.tests if t.visibility == "visible"]
        summary = (f"Visible cases: {sum(t.score for t in shown):g} / "
                   f"{sum(t.max_score for t in shown):g}.  The hidden cases and the total "
                   "show after the due date.")
    else:
        summary = f"Score {results.score:g} / {results.max_score:g}."
    return {
        "score": results.score,
        "execution_time": round(results.execution_time, 2),
        "output": cap("\n".join([summary] + results.notes), 8 * MAX_OUTPUT_BYTES),
        "visibility": "after_due_date" if later else "visible",
        "stdout_visibility": "hidden",
        "extra_data": {"max_score": results.max_score},
        "tests": [{"score": t.score, "max_score": t.max_score, "status": t.status,
                   "name": t.name, "number": t.number, "output": cap(t.output),
                   "tags": [t.group] if t.group else [], "visibility": t.visibility,
                   "extra_data": {"case": t.case}} for t in results.tests],
        "leaderboard": results.leaderboard,
    }


def crash_results(reason: str, execution_time: float = 0.0) -> dict:
    """A valid results.json for a grading run that could not finish."""
    return {"score": 0.0, "execution_time": round(execution_time, 2),
            "output": cap(f"The autograder could not grade this submission: {reason}"),
            "visibility": "visible", "stdout_visibility": "hidden",
            "extra_data": {"max_score": 0.0}, "tests": [], "leaderboard": []}


def write_json(path: str | Path, data: dict) -> None:
    """Write atomically (temp file + rename) so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2))
    os.replace(temporary, path)


def table(data: dict, title: str = "") -> str:
    """A readable table of a results.json dict: one line per test, then the total."""
    lines = [title] if title else []
    width = max([len(t["name"]) for t in data["tests"]] + [20])
    for test in data["tests"]:
        first = test["output"].strip().splitlines()[0] if test["output"].strip() else ""
        unscored = test["max_score"] == 0  # e.g. prediction files without hidden labels
        mark = "--  " if unscored else "ok  " if test["status"] == "passed" else "FAIL"
        hint = f"  {first[:90]}" if unscored or test["status"] != "passed" else ""
        lines.append(f"  {mark} {test['name']:<{width}} {test['score']:>5g}/{test['max_score']:<5g}"
                     f"{hint}")
    total = sum(t["max_score"] for t in data["tests"])
    penalty = (data.get("extra_data") or {}).get("late_penalty", 0.0)
    late = f", {penalty:.0%} off for lateness" if penalty else ""
    lines.append(f"  total: {data['score']:g} / {total:g}   ({data['execution_time']:.1f} s"
                 f"{late})")
    for entry in data.get("leaderboard", []):
        lines.append(f"  leaderboard: {entry['name']} = {entry['value']}")
    return "\n".join(lines)


def csv_row(student: str, data: dict) -> dict[str, object]:
    """One gradebook row of a results.json dict: `student` (the submission's name), `name`,
    `sid`, `email` (its submitters from Gradescope's metadata, "; "-joined, empty when
    none), `score` (after the late policy), `max_score`, `late_penalty` (the fraction taken
    off), `status`, then one column per case (named as the case, e.g. "attention/causal")
    with its points."""
    extra = data.get("extra_data") or {}
    users = extra.get("users") or []
    row: dict[str, object] = {"student": student}
    for key in ("name", "sid", "email"):
        row[key] = "; ".join(str(user.get(key, "")) for user in users)
    row.update(score=data["score"],
               max_score=round(sum(t["max_score"] for t in data["tests"]), 4),
               late_penalty=extra.get("late_penalty", 0.0),
               status="graded" if data["tests"] else cap(data["output"], 200).replace("\n", " "))
    for test in data["tests"]:
        row[test["extra_data"]["case"]] = test["score"]
    return row

"""Reports: Gradescope's results.json, the terminal table, and a gradebook CSV row.

results.json follows Gradescope's specification: top-level `score`, `execution_time`,
`output`, `visibility`, `tests` (each `name`, `number`, `score`, `max_score`, `status`,
`output`, `visibility`, and our own `case`: the name of the case or prediction task, so
that tools never parse the feedback) and `leaderboard`.  Every test's output is capped at 4 KB.  The file
is written atomically, and `crash_results` gives a valid one (score 0 and the reason) when
grading itself failed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

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


def to_json(results: Results) -> dict:
    summary = f"Score {results.score:g} / {results.max_score:g}."
    return {
        "score": results.score,
        "execution_time": round(results.execution_time, 2),
        "output": cap("\n".join([summary] + results.notes), 8 * MAX_OUTPUT_BYTES),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [{"name": t.name, "number": t.number, "score": t.score,
                   "max_score": t.max_score, "status": t.status, "output": cap(t.output),
                   "visibility": t.visibility, "case": t.case} for t in results.tests],
        "leaderboard": results.leaderboard,
    }


def crash_results(reason: str, execution_time: float = 0.0) -> dict:
    """A valid results.json for a grading run that could not finish."""
    return {"score": 0.0, "execution_time": round(execution_time, 2),
            "output": cap(f"The autograder could not grade this submission: {reason}"),
            "visibility": "visible", "tests": [], "leaderboard": []}


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
    lines.append(f"  total: {data['score']:g} / {total:g}   ({data['execution_time']:.1f} s)")
    for entry in data.get("leaderboard", []):
        lines.append(f"  leaderboard: {entry['name']} = {entry['value']}")
    return "\n".join(lines)


def csv_row(student: str, data: dict) -> dict[str, object]:
    """One gradebook row: the student, the total, one column per group, the status."""
    row: dict[str, object] = {"student": student, "score": data["score"],
                              "max_score": round(sum(t["max_score"] for t in data["tests"]), 4)}
    for test in data["tests"]:
        group = test["name"].split(":", 1)[0]
        row[group] = round(float(row.get(group, 0.0)) + test["score"], 4)
    row["status"] = "graded" if data["tests"] else cap(data["output"], 200).replace("\n", " ")
    return row

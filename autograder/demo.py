"""`python -m autograder demo`: the whole grading story in one offline command (staff only).

1. release the handout of the chosen parts (default: all) into a temporary folder;
2. grade that handout untouched: every fenced part must score 0, and each failing case's
   feedback must name the TODO the student has to write;
3. grade the reference solution's gradable files: every case must score full marks;
4. print both tables and write the reference's results.json.
Prediction files are not part of the demo (neither tree holds any).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from autograder.grade import ROOT, Layout, grade
from autograder.parts import assignment, check_parts
from autograder.release import release
from autograder.report import table


def handout_problems(data: dict) -> list[str]:
    """What is wrong with the untouched handout's results (empty when as expected)."""
    problems = [f"{t['name']}: scored {t['score']} on the untouched handout"
                for t in data["tests"] if t["score"] != 0]
    problems += [f"{t['name']}: feedback names no TODO" for t in data["tests"]
                 if "TODO " not in t["output"]]
    return problems + ([] if data["tests"] else [f"no tests ran: {data['output']}"])


def reference_problems(data: dict) -> list[str]:
    problems = [f"{t['name']}: {t['score']}/{t['max_score']} on the reference: {t['output'][:300]}"
                for t in data["tests"] if t["status"] != "passed"]
    return problems + ([] if data["tests"] else [f"no tests ran: {data['output']}"])


def run_demo(json_path: Path, only: list[str] | None = None,
             parts: list[str] | None = None) -> int:
    start = time.monotonic()
    chosen = check_parts(parts) if parts else None
    work = Path(tempfile.mkdtemp(prefix="gpt2-demo-"))
    try:
        handout = work / "handout"
        release(ROOT, handout, chosen)
        print(f"[demo] released the handout of {assignment(handout)['parts']} to {handout}")
        layout = Layout(ROOT, handout, hidden_cases=True, parts=chosen)
        untouched = grade(handout, only=only, predictions=False, layout=layout)
        print(table(untouched, "\n[demo] the untouched handout (expect 0 everywhere):"))
        reference = work / "reference"
        for rel in assignment(handout)["gradable"]:
            (reference / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / rel, reference / rel)
        solved = grade(reference, json_path=json_path, only=only, predictions=False,
                       layout=layout)
        print(table(solved, "\n[demo] the reference solution (expect full marks):"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    problems = handout_problems(untouched) + reference_problems(solved)
    for problem in problems:
        print(f"[demo] UNEXPECTED: {problem}")
    verdict = "as expected" if not problems else f"{len(problems)} unexpected result(s)"
    print(f"\n[demo] {verdict}; results.json of the reference: {json_path} "
          f"({time.monotonic() - start:.1f} s)")
    return 1 if problems else 0

"""Grade the multiple-choice answers of `answers.toml` against the course file's keys.

A student answers each `[[choice]]` question of the course file (`autograder/course.py`)
with the 0-based numbers of every option that applies, `id = [0, 2]`.  A question earns its
points when the list names exactly the options of its key, in any order, and 0 otherwise
("check all that apply": no partial credit).  Its result shows after the due date, so that
resubmitting does not reveal the key.  The judge alone reads the file; no student code
runs for it.
"""

from __future__ import annotations

import tomllib

from autograder.course import ANSWERS_FILE, Course
from autograder.report import TestResult

GROUP = "questions"


def read_answers(text: str | None) -> tuple[dict[str, object], str]:
    """(the parsed answers, '' or why none could be read) of an answers.toml text."""
    if text is None:
        return {}, f"{ANSWERS_FILE} is missing from the submission"
    try:
        return tomllib.loads(text), ""
    except tomllib.TOMLDecodeError as error:
        return {}, f"{ANSWERS_FILE} is not valid TOML: {error}"


def grade_choice(course: Course, text: str | None) -> list[TestResult]:
    """One result per multiple-choice question of `course`, from the text of the
    submission's answers.toml (None when it has none)."""
    answers, problem = read_answers(text)
    results = []
    for number, question in enumerate(course.choice, start=1):
        if question.answer is None:
            raise ValueError(f"{course.source}: [[choice]] {question.id!r} has no answer key "
                             "(grade with the staff's course file)")
        given = answers.get(question.id)
        name = f"{GROUP}: {question.id}"
        if problem or given is None:
            output = problem or f"{ANSWERS_FILE} has no line `{question.id} = [...]`"
            score = 0.0
        elif (not isinstance(given, list) or len(set(map(repr, given))) != len(given) or any(
                not isinstance(a, int) or isinstance(a, bool)
                or not 0 <= a < len(question.options) for a in given)):
            output = (f"{ANSWERS_FILE}: {question.id} = {given!r}: expected a list of distinct "
                      f"option numbers in 0 .. {len(question.options) - 1}")
            score = 0.0
        else:
            right = sorted(given) == list(question.answer)
            score = question.points if right else 0.0
            output = "correct" if right else "not the options that apply"
        results.append(TestResult(name, f"Q.{number}", score, question.points, output,
                                  "after_due_date", GROUP, f"{GROUP}/{question.id}"))
    return results

"""HANDOUT.md follows the assignment: its sections, points table, appendix, the course's
dates, policies and questions, and every command it names works in that release."""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from autograder.answers import grade_choice
from autograder.case import all_cases
from autograder.course import ANSWERS_FILE, Course, load_course
from autograder.document import APPENDIX, HEADING, course_text, handout_commands, points
from autograder.fences import fenced_functions
from autograder.manifest import PARTS
from autograder.release import check_release, release
from conftest import REPO

SMALL = ("model", "optimizer")
COURSE = '''
[course]
name = "CS 999: Build GPT-2"
term = "Spring 2031"
parts = ["optimizer", "model"]

[dates]
due = 2031-04-14T23:59:00-07:00
late_due = 2031-04-16T23:59:00-07:00

[late_policy]
per_day = 0.25

[policies]
collaboration = "Discuss ideas freely; write your code alone."
honor_code = "By submitting you affirm this is your own work."
submit = "Upload submission.zip to Gradescope, assignment 'GPT-2 (CS 999)'."

[visibility]
before_due = "after_due_date"

[[written]]
id = "why_tied"
points = 3
question = "Why may GPT-2 tie its output matrix to the word embedding?"

[[choice]]
id = "causal_mask"
points = 2
question = "What does the causal mask prevent?"
options = ["attending to later tokens", "attending to itself", "attending to padding"]
answer = [0]
'''


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[object, Path]:
    """A two-part release made from a course file by `release --course`, which checks it."""
    folder = tmp_path_factory.mktemp("small")
    (folder / "course.toml").write_text(COURSE)
    made = subprocess.run([sys.executable, "-m", "autograder", "release", "--out",
                           str(folder / "handout"), "--course", str(folder / "course.toml")],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr[-3000:]
    return load_course(folder / "course.toml"), folder / "handout"


@pytest.fixture(scope="module")
def every_part(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("all") / "handout"
    release(REPO, out)
    return out


@pytest.fixture(params=["small", "every_part"])
def released(request) -> tuple[tuple[str, ...], Path]:
    if request.param == "small":
        course, out = request.getfixturevalue("small")
        return course.parts, out
    return tuple(PARTS), request.getfixturevalue("every_part")


def chapters(text: str) -> set[str]:
    return {section.split(".")[0] for section in HEADING.findall(text)}


def test_sections_and_appendix_follow_the_assignment(released):
    parts, out = released
    text = (out / "HANDOUT.md").read_text()
    assert parts == SMALL or check_release(REPO, out) == []  # `release` checked the small one
    numbered = set(HEADING.findall(text))
    for name, part in PARTS.items():
        assert (part.section in numbered) == (name in parts), name
    left_out = [name for name in PARTS if name not in parts]
    if not left_out:
        assert APPENDIX not in text
        return
    appendix = text.split(APPENDIX)[1].strip().splitlines()
    assert [line.split("**")[1] for line in appendix] == [
        f"{PARTS[name].section} {PARTS[name].title}" for name in left_out]
    assert all("ships solved" in line for line in appendix)
    body = text.split(APPENDIX)[0]
    assert chapters(body) == {"1", "2"} | {PARTS[name].section.split(".")[0] for name in parts}
    sections = body.split("## 2.")[1].split("## Submitting")[0]
    assert "ships solved" not in sections.lower()  # no part's prose says so
    overview = body.split("## 2.")[0]
    assert all(PARTS[name].title.lower() in overview for name in parts)
    assert not any(f"section {PARTS[name].section}," in overview for name in left_out)


def test_points_table_gives_every_graded_function_its_visible_and_hidden_points(released):
    parts, out = released
    text = (out / "HANDOUT.md").read_text()
    table = text.split("## Points")[1].split("\n## ")[0]
    assert "| part | graded | visible points | hidden points | total |" in table
    cases = all_cases(parts=parts)
    for function, part in fenced_functions(REPO).items():
        rel, _, qualname = function.partition(":")
        row = f"| {PARTS[part].title} | `{qualname}` (`{rel}`) |"
        if part not in parts:
            assert row not in table
            continue
        alone = [c for c in cases if c.grades == (function,)]
        visible = sum(c.points for c in alone if c.visible)
        hidden = sum(c.points for c in alone if not c.visible)
        assert f"{row} {visible:g} | {hidden:g} | {visible + hidden:g} |" in table, function
    summary = points(REPO, parts)
    total = sum(row["total"] for row in summary.values())
    questions = 5 if parts == SMALL else 0
    assert f"Total: **{total + questions:g}** points." in table


def test_the_course_file_fills_the_handout(small):
    course, out = small
    text = (out / "HANDOUT.md").read_text()
    assert text.startswith("# CS 999: Build GPT-2 (Spring 2031)\n")
    for piece in ("- **Due:** Monday 14 April 2031, 23:59 (UTC-07:00).",
                  "accepted until Wednesday 16 April 2031, 23:59 (UTC-07:00), losing 25% of "
                  "the score per started day",
                  "**Collaboration.** Discuss ideas freely; write your code alone.",
                  "**Honor code.** By submitting you affirm this is your own work.",
                  "Upload submission.zip to Gradescope, assignment 'GPT-2 (CS 999)'.",
                  "after the due date",
                  "- **why_tied** (3 points): Why may GPT-2 tie its output matrix",
                  "- **causal_mask** (2 points): What does the causal mask prevent?",
                  "    1. attending to itself",
                  "| Questions | written question **why_tied** (graded by hand) | 3 |",
                  "| Questions | multiple-choice question **causal_mask** "
                  f"(`{ANSWERS_FILE}`) | 2 |"):
        assert piece in text, piece
    assert "CS 999" in (out / "README.md").read_text()


def test_answers_template_holds_every_question_and_no_key(small, every_part):
    course, out = small
    answers = tomllib.loads((out / ANSWERS_FILE).read_text())
    assert answers == {q.id: [] for q in course.choice}
    assert not (every_part / ANSWERS_FILE).exists()  # no course file, no questions
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".toml", ".json", ".md"):
            assert "answer = [" not in path.read_text(), path


def run(out: Path, *words: str) -> subprocess.CompletedProcess:
    """A command as a student runs it in the handout (its own modules first)."""
    env = {**os.environ, "PYTHONPATH": str(out)}
    return subprocess.run([sys.executable, *words], cwd=out, env=env, capture_output=True,
                          text=True, timeout=300)


@functools.cache
def helped(out: Path, program: tuple[str, ...]) -> subprocess.CompletedProcess:
    return run(out, *program, "--help")


def check_command(out: Path, command: str) -> str | None:
    """What is wrong with one command HANDOUT.md names, run in the release `out` (None when
    it works): a script's `--help` must run and list every flag the command passes; an
    autograder `check --only` must run real cases; a shell script must parse."""
    words = shlex.split(command)
    if words[0] in ("bash", "sbatch"):
        script = out / words[1]
        if not script.is_file():
            return f"{command}: no {words[1]} in the release"
        parsed = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        return None if parsed.returncode == 0 else f"{command}: {parsed.stderr}"
    if words[0] not in ("python", ".venv/bin/python"):
        return f"{command}: not a command this test knows how to run"
    args = words[1:]
    if args[:3] == ["-m", "autograder", "check"] and "--only" in args:
        result = run(out, *args)
        total = re.search(r"total: \S+ / (\S+)", result.stdout)
        if not total or float(total.group(1)) == 0:
            return f"{command}: ran no cases\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        return None
    program = args[:3] if args[:2] == ["-m", "autograder"] else args[:1]
    if not args or (program[0] != "-m" and not (out / program[0]).is_file()):
        return f"{command}: no {args[:1]} in the release"
    result = helped(out, tuple(program))
    if result.returncode != 0:
        return f"{command}: --help exits {result.returncode}\n{result.stderr[-2000:]}"
    missing = [word.split("=")[0] for word in args[len(program):]
               if word.startswith("--") and word.split("=")[0] not in result.stdout]
    return f"{command}: --help lists no {missing}" if missing else None


def test_every_command_of_the_handout_works_in_its_release(released):
    parts, out = released
    commands = handout_commands((out / "HANDOUT.md").read_text())
    assert "python -m autograder check --only optimizer" in commands
    assert len(commands) >= 8
    problems = [problem for command in commands
                if (problem := check_command(out, command)) is not None]
    assert problems == []


def test_handout_commands_reads_blocks_and_inline_spans():
    text = ("Run `python a.py --x 1` then:\n\n```bash\npython b.py \\\n    --y 2  # why\n"
            "# a comment\n\n```\n\n`not a command` and `bash setup.sh`.\n")
    assert handout_commands(text) == ["python b.py --y 2", "python a.py --x 1",
                                      "bash setup.sh"]


def test_choice_answers_are_graded_against_the_hidden_key(small):
    course, _ = small
    (question,) = course.choice
    assert question.answer == (0,)

    def graded(text):
        (result,) = grade_choice(course, text)
        return result.score, result.output

    assert graded("causal_mask = [0]") == (2.0, "correct")
    assert graded("causal_mask = [0, 2]") == (0.0, "not the options that apply")
    assert graded("causal_mask = []") == (0.0, "not the options that apply")
    assert graded("causal_mask = [3]")[1] == (
        "answers.toml: causal_mask = [3]: expected a list of distinct option numbers in 0 .. 2")
    assert graded("other = [0]") == (0.0, "answers.toml has no line `causal_mask = [...]`")
    assert graded(None) == (0.0, "answers.toml is missing from the submission")
    assert graded("causal_mask = [0")[1].startswith("answers.toml is not valid TOML")
    (result,) = grade_choice(course, "causal_mask = [0]")
    assert (result.max_score, result.visibility) == (2.0, "after_due_date")
    assert "answer" not in {key for q in course.public()["choice"] for key in q}


def test_late_policy_reads_plainly_in_each_form():
    zone = dt.timezone(dt.timedelta(hours=-8))
    due = dt.datetime(2027, 2, 14, 23, 59, tzinfo=zone)
    late = dt.datetime(2027, 2, 16, 23, 59, tzinfo=zone)
    assert course_text(Course("C", "", ("model",), due)).splitlines()[2:] == [
        "- **Due:** Sunday 14 February 2027, 23:59 (UTC-08:00).",
        "- **Late:** nothing is accepted after the due date."]
    assert "(UTC-08:00) without penalty; nothing is accepted after that." in course_text(
        Course("C", "", ("model",), due, late))
    assert course_text(Course("C", "T", ("model",))) == "# C (T)\n"


def test_answers_toml_is_packed_and_graded_with_the_course_file(small, tmp_path):
    """prepare_submit.py packs the handout's answers.toml; `grade` with the staff's course
    file scores it (the pseudo-group "questions"), and `check` never does."""
    import zipfile

    import prepare_submit
    from autograder.grade import grade

    course, out = small
    packed = tmp_path / "submission.zip"
    assert prepare_submit.main(["--root", str(out), "--out", str(packed), "--code-only"]) == 0
    assert ANSWERS_FILE in zipfile.ZipFile(packed).namelist()
    untouched = grade(packed, only=["questions"], course=course)
    assert [(t["name"], t["score"], t["max_score"]) for t in untouched["tests"]] == [
        ("questions: causal_mask", 0.0, 2.0)]
    answered = tmp_path / "answered"
    answered.mkdir()
    (answered / ANSWERS_FILE).write_text("causal_mask = [0]\n")
    data = grade(answered, only=["questions"], course=course)
    assert [(t["score"], t["output"]) for t in data["tests"]] == [(2.0, "correct")]
    assert "ignored" not in data["output"]
    assert grade(answered, only=["questions"], course=course, visible_only=True)["tests"] == []

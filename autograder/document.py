"""The student's documents: `HANDOUT.md`, `README.md` and `answers.toml`, written by the release.

The prose lives once, in `handout/*.md` of the staff repository (one file per section,
named in `autograder/manifest.py`); the course, its dates, policies and questions, in the
course file (`autograder/course.py`).  `HANDOUT.md` covers the assignment's parts only and
reads, in order:

- the course's name and term, then its dates, late policy, collaboration policy and honor
  code (each only when the course file gives it);
- the opening sections (overview with the list of this assignment's parts, set-up and
  checking);
- each chosen part's section in handout order (a chapter's own prose before its first
  chosen part), ending with the `check --only` command of its visible case groups;
- the written and multiple-choice questions with their points (answered in
  `answers.toml`, whose template the release writes beside HANDOUT.md);
- how to submit (the handout's prose, then the course's own instructions);
- the points table: each graded function's visible and hidden points, read from the cases
  (a case that grades several functions together is a row of its own), then the
  prediction files and the questions, and the total;
- the appendix of the parts that ship solved, one line each.

A part's section number never changes with the assignment, because the code cites it
("(handout 5.1)"): a citation of a part that ships solved resolves to its appendix line.

    python -m autograder release --out /tmp/handout --parts model optimizer
    less /tmp/handout/HANDOUT.md          # the preview is the release itself
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import textwrap
from dataclasses import dataclass
from pathlib import Path

from autograder.case import all_cases
from autograder.course import ANSWERS_FILE, Course
from autograder.fences import fenced_functions, part_of_section
from autograder.manifest import CHAPTERS, HANDOUT_OPENING, HANDOUT_SUBMIT, PARTS

HEADING = re.compile(r"^#{1,6} ([0-9]+(?:\.[0-9]+)*)\.?\s", re.MULTILINE)
SOLVED_LINE = re.compile(r"^- \*\*([0-9]+(?:\.[0-9]+)*) ", re.MULTILINE)
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")  # a TOML key that needs no quotes
CITED = re.compile(r"\bhandout ([0-9]+(?:\.[0-9]+)*)\b")
WIDTH = 90  # the prose's line length
APPENDIX = "## Appendix: parts that ship solved"
README = """# {name}: your handout

Set up once, then check your work with the visible autograder cases:

```bash
bash setup.sh
.venv/bin/python -m autograder check
```

The assignment is `HANDOUT.md`: what to write, the rules and the math, how to check your
work, the points and how to submit (`.venv/bin/python prepare_submit.py`).  Parts in this
assignment: {parts}.
"""


@dataclass(frozen=True)
class Row:
    """Points of one graded row: a function, or several functions graded together."""

    part: str
    functions: tuple[str, ...]  # "<file>:<qualname>"
    visible: float = 0.0
    hidden: float = 0.0

    @property
    def label(self) -> str:
        if len(self.functions) == 1:
            rel, _, qualname = self.functions[0].partition(":")
            return f"`{qualname}` (`{rel}`)"
        names = ", ".join(f"`{f.partition(':')[2]}`" for f in self.functions)
        return f"together: {names}"


def function_points(root: Path, parts: tuple[str, ...]) -> list[Row]:
    """One row per distinct `Case.grades` of the chosen parts' cases (visible and hidden),
    in grading order, with its visible and hidden points."""
    rows: dict[tuple[str, ...], Row] = {}
    for case in all_cases(include_hidden=True, parts=parts):
        row = rows.get(case.grades) or Row(case.part, case.grades)
        rows[case.grades] = Row(row.part, row.functions,
                                row.visible + (case.points if case.visible else 0.0),
                                row.hidden + (0.0 if case.visible else case.points))
    return list(rows.values())


def prediction_points(parts: tuple[str, ...]) -> list[tuple[str, str, float]]:
    """(part, prediction file, points) of the chosen parts' prediction files."""
    from autograder.predictions import TASKS

    files = {rel: name for name in parts for rel in PARTS[name].predictions}
    return [(files[task.file], task.file, task.points) for task in TASKS if task.file in files]


def points(root: Path, parts: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """part -> {"visible", "hidden", "predictions", "total"} points of the chosen parts."""
    table = {name: {"visible": 0.0, "hidden": 0.0, "predictions": 0.0} for name in parts}
    for row in function_points(root, parts):
        table[row.part]["visible"] += row.visible
        table[row.part]["hidden"] += row.hidden
    for name, _, value in prediction_points(parts):
        table[name]["predictions"] += value
    for row in table.values():
        row["total"] = row["visible"] + row["hidden"] + row["predictions"]
    return table


def visible_groups(root: Path, part: str) -> list[str]:
    """The case groups of `part` that have visible cases, in grading order."""
    cases = all_cases(include_hidden=False, parts=(part,))
    return list(dict.fromkeys(case.group for case in cases if case.visible))


def check_command(root: Path, part: str) -> str | None:
    """`python -m autograder check --only G ...` for the visible groups of `part`."""
    groups = visible_groups(root, part)
    if not groups:
        return None
    return "python -m autograder check " + " ".join(f"--only {g}" for g in groups)


def _wrap(text: str) -> list[str]:
    """`text` as lines of at most WIDTH characters, never breaking inside a `code` span."""
    kept = re.sub(r"`[^`]*`", lambda span: span.group(0).replace(" ", "\0"), text)
    return [line.replace("\0", " ") for line in textwrap.wrap(kept, WIDTH)]


def _count(points: float) -> str:
    return f"{points:g} point" + ("" if points == 1 else "s")


def _when(moment: dt.datetime) -> str:
    """"Sunday 14 February 2027, 23:59 (UTC-08:00)"."""
    offset = moment.strftime("%z")  # "-0800"
    return moment.strftime("%A %d %B %Y, %H:%M") + f" (UTC{offset[:3]}:{offset[3:5]})"


def course_text(course: Course) -> str:
    """The title, the dates and late policy, the collaboration policy and the honor code."""
    lines = [f"# {course.name}" + (f" ({course.term})" if course.term else ""), ""]
    if course.due:
        lines.append(f"- **Due:** {_when(course.due)}.")
        if course.late_due:
            penalty = (f", losing {course.late_per_day * 100:g}% of the score per started day "
                       "after the due date" if course.late_per_day else " without penalty")
            lines.append(f"- **Late:** accepted until {_when(course.late_due)}{penalty}; nothing "
                         "is accepted after that.")
        else:
            lines.append("- **Late:** nothing is accepted after the due date.")
        if course.before_due == "after_due_date":
            lines.append("- **Results:** the hidden cases' results and your total show on "
                         "Gradescope after the due date; the visible cases show at once.")
        lines.append("")
    for title, text in (("Collaboration", course.collaboration),
                        ("Honor code", course.honor_code)):
        if text.strip():
            lines += [f"**{title}.** {text.strip()}", ""]
    return "\n".join(lines)


def overview_parts(root: Path, course: Course) -> str:
    """The list of the assignment's parts with their points, and where the others went."""
    table = points(root, course.parts)
    lines = ["This assignment's parts:", ""]
    lines += [f"- section {PARTS[name].section}, {PARTS[name].title.lower()}: "
              f"{_count(table[name]['total'])}" for name in course.parts]
    if course.written or course.choice:
        lines.append(f"- the questions: {_count(_question_points(course))}")
    if set(PARTS) - set(course.parts):
        lines += ["", *_wrap("The other parts of the kit ship solved: their code is complete "
                             "in your handout, you may read and use it, and it is not graded "
                             "(the appendix lists them).")]
    return "\n".join(lines) + "\n"


def _question_points(course: Course) -> float:
    return sum(q.points for q in (*course.written, *course.choice))


def questions_text(course: Course) -> str:
    """The written and multiple-choice questions with their points ('' when none)."""
    if not (course.written or course.choice):
        return ""
    lines = ["## Questions", ""]
    if course.written:
        lines += ["Answer the written questions on Gradescope; they are graded by hand.", ""]
        lines += [f"- **{q.id}** ({_count(q.points)}): {q.question.strip()}"
                  for q in course.written]
        lines.append("")
    if course.choice:
        lines += [*_wrap(
            f"Answer the multiple-choice questions in `{ANSWERS_FILE}` (in your handout "
            "folder, beside this file; `prepare_submit.py` packs it with your code): each "
            "question's line lists the numbers of every "
            "option that applies, e.g. `id = [0, 2]`. A question earns its points when its "
            "list names exactly those options (no partial credit); the result shows after "
            "the due date."), ""]
        for q in course.choice:
            lines.append(f"- **{q.id}** ({_count(q.points)}): {q.question.strip()}")
            lines += [f"    {i}. {option}" for i, option in enumerate(q.options)]
        lines.append("")
    return "\n".join(lines)


def answers_template(course: Course) -> str:
    """`answers.toml` for the students: one empty list per multiple-choice question."""
    lines = ["# Your answers to the multiple-choice questions of HANDOUT.md: the numbers of",
             "# every option that applies, e.g. [0, 2] for the first and the third.", ""]
    for q in course.choice:
        lines.append(f"# {q.question.strip()}")
        lines += [f"#   {i}. {option}" for i, option in enumerate(q.options)]
        key = q.id if BARE_KEY.fullmatch(q.id) else json.dumps(q.id)
        lines += [f"{key} = []", ""]
    return "\n".join(lines)


def points_table(root: Path, course: Course) -> str:
    """The markdown points table of the assignment, with its total."""
    rows = function_points(root, course.parts)
    lines = ["## Points", ""]
    lines += _wrap("Visible points are those of the cases `python -m autograder check` runs "
                   "(the grader's machinery and tolerances); hidden points are graded on "
                   "Gradescope only, on the same rules with other shapes and seeds.")
    lines += ["", "| part | graded | visible points | hidden points | total |",
              "| --- | --- | ---: | ---: | ---: |"]
    for row in rows:
        lines.append(f"| {PARTS[row.part].title} | {row.label} | {row.visible:g} | "
                     f"{row.hidden:g} | {row.visible + row.hidden:g} |")
    visible = sum(row.visible for row in rows)
    hidden = sum(row.hidden for row in rows)
    lines.append(f"| **code** | | {visible:g} | {hidden:g} | {visible + hidden:g} |")
    other = [(PARTS[name].title, f"prediction file `{rel}` (scored on held-out data)", value)
             for name, rel, value in prediction_points(course.parts)]
    other += [("Questions", f"written question **{q.id}** (graded by hand)", q.points)
              for q in course.written]
    other += [("Questions", f"multiple-choice question **{q.id}** (`{ANSWERS_FILE}`)",
               q.points) for q in course.choice]
    if other:
        lines += ["", "| part | graded | points |", "| --- | --- | ---: |"]
        lines += [f"| {part} | {what} | {value:g} |" for part, what, value in other]
    total = visible + hidden + sum(value for _, _, value in other)
    lines += ["", f"Total: **{total:g}** points."]
    return "\n".join(lines) + "\n"


def solved_appendix(root: Path, course: Course) -> str:
    """One line per part that ships solved ('' when every part is in)."""
    left_out = [name for name in PARTS if name not in course.parts]
    if not left_out:
        return ""
    fences = fenced_functions(root)
    lines = [APPENDIX, ""]
    for name in left_out:
        files = list(dict.fromkeys(f.partition(":")[0] for f, part in fences.items()
                                   if part == name))
        where = f" ({', '.join(f'`{rel}`' for rel in files)})" if files else ""
        lines.append(f"- **{PARTS[name].section} {PARTS[name].title}**{where}: ships solved; "
                     "read its code and build on it, it is not graded.")
    return "\n".join(lines) + "\n"


def handout_text(root: Path, course: Course) -> str:
    """HANDOUT.md of the course's assignment (see the module docstring)."""
    opening = [(root / rel).read_text() for rel in HANDOUT_OPENING]
    pieces = [course_text(course), opening[0], overview_parts(root, course), *opening[1:]]
    opened: set[str] = set()
    for name in course.parts:
        part = PARTS[name]
        chapter = part.section.split(".")[0]
        if chapter in CHAPTERS and chapter not in opened:
            pieces.append((root / CHAPTERS[chapter]).read_text())
            opened.add(chapter)
        pieces.append((root / part.prose).read_text())
        command = check_command(root, name)
        if command:
            pieces.append(f"Check this part's visible cases:\n\n```bash\n{command}\n```\n")
    submit = (root / HANDOUT_SUBMIT).read_text()
    if course.submit.strip():
        submit = submit.rstrip("\n") + "\n\n" + course.submit.strip() + "\n"
    pieces += [questions_text(course), submit, points_table(root, course),
               solved_appendix(root, course)]
    return "\n".join(piece.rstrip("\n") + "\n" for piece in pieces if piece.strip())


def write_documents(root: Path, out: Path, course: Course) -> list[str]:
    """Write HANDOUT.md, README.md and (with multiple-choice questions) answers.toml into
    the handout folder `out`; returns their names."""
    (out / "HANDOUT.md").write_text(handout_text(root, course))
    titles = ", ".join(f"{PARTS[name].title.lower()} (section {PARTS[name].section})"
                       for name in course.parts)
    (out / "README.md").write_text(README.format(name=course.name, parts=titles))
    written = ["HANDOUT.md", "README.md"]
    if course.choice:
        (out / ANSWERS_FILE).write_text(answers_template(course))
        written.append(ANSWERS_FILE)
    return written


def handout_commands(text: str) -> list[str]:
    """Every shell command a document names: each line of its ```bash blocks (comments
    dropped, backslash continuations joined) and each inline `code` span that starts with
    `python`, `.venv/bin/python`, `bash`, `sbatch` or `torchrun`."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(" ".join(words))
    starts = ("python ", ".venv/bin/python ", "bash ", "sbatch ", "torchrun ")
    for span in re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", text,
                                                 flags=re.MULTILINE | re.DOTALL)):
        if span.startswith(starts):
            commands.append(span)
    return list(dict.fromkeys(commands))


def _part(section: str) -> str | None:
    """The part of a cited section, None when it belongs to none."""
    try:
        return part_of_section(section, "citation")
    except ValueError:
        return None


def unresolved_citations(out: Path) -> list[str]:
    """Every "handout N.M" in a released file that is neither a section of out/HANDOUT.md
    nor inside a part its appendix lists as shipping solved."""
    text = (out / "HANDOUT.md").read_text()
    sections = set(HEADING.findall(text))
    solved = {part_of_section(s, "HANDOUT.md appendix") for s in SOLVED_LINE.findall(text)}
    problems = []
    for path in sorted(out.rglob("*")):
        if not path.is_file() or path.suffix not in (".py", ".md", ".sh", ".txt"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for section in CITED.findall(line):
                if section not in sections and _part(section) not in solved:
                    problems.append(f"{path.relative_to(out)}:{number}: cites handout "
                                    f"{section}, which HANDOUT.md has no section for")
    return problems

"""The student's documents: `HANDOUT.md` and `README.md`, written by the release.

The prose lives once, in `handout/*.md` of the staff repository (one file per section,
named in `autograder/manifest.py`).  `HANDOUT.md` is, in order: the opening files
(overview, set-up and checking), every part's section in handout order (a chapter's own
prose before its first part; a part the assignment leaves out keeps its section, with a
note that it ships solved, because its solved code still cites it), how to submit, and the
points table, computed from the cases of the chosen parts (visible and hidden counted
apart) and the prediction files.  `README.md` holds the two set-up commands.

    python -m autograder release --out /tmp/handout --parts model optimizer
    less /tmp/handout/HANDOUT.md          # the preview is the release itself
"""

from __future__ import annotations

import re
from pathlib import Path

from autograder.case import all_cases, case_part
from autograder.manifest import CHAPTERS, HANDOUT_OPENING, HANDOUT_SUBMIT, PARTS

HEADING = re.compile(r"^#{1,6} ([0-9]+(?:\.[0-9]+)*)\.?\s", re.MULTILINE)
CITED = re.compile(r"\bhandout ([0-9]+(?:\.[0-9]+)*)\b")
SOLVED_NOTE = ("> **Ships solved in this assignment.** This part's code is complete in your\n"
               "> handout: read it and build on it; it is not graded.\n")
README = """# Build GPT-2: your handout

Set up once, then check your work with the visible autograder cases:

```bash
bash setup.sh
.venv/bin/python -m autograder check
```

The assignment is `HANDOUT.md`: what to write, the rules and the math, how to check your
work, the points and how to submit (`.venv/bin/python prepare_submit.py`).  Parts in this
assignment: {parts}.
"""


def points(root: Path, parts: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """part -> {"visible", "hidden", "predictions", "total"} points of the chosen parts."""
    from autograder.predictions import TASKS

    table = {name: {"visible": 0.0, "hidden": 0.0, "predictions": 0.0} for name in parts}
    for case in all_cases(include_hidden=True, parts=parts, root=root):
        table[case_part(case, root)]["visible" if case.visible else "hidden"] += case.points
    files = {rel: name for name in parts for rel in PARTS[name].predictions}
    for task in TASKS:
        if task.file in files:
            table[files[task.file]]["predictions"] += task.points
    for row in table.values():
        row["total"] = row["visible"] + row["hidden"] + row["predictions"]
    return table


def points_table(root: Path, parts: tuple[str, ...]) -> str:
    """The markdown points table of the chosen parts, with its total."""
    table = points(root, parts)
    lines = ["## Points", "",
             "Visible cases run in `python -m autograder check` (the grader's machinery and",
             "tolerances); hidden cases and prediction files are graded on Gradescope only.",
             "",
             "| part | section | visible cases | hidden cases | prediction files | total |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for name, row in table.items():
        lines.append(f"| {PARTS[name].title} | {PARTS[name].section} | {row['visible']:g} | "
                     f"{row['hidden']:g} | {row['predictions']:g} | {row['total']:g} |")
    total = {key: sum(row[key] for row in table.values())
             for key in ("visible", "hidden", "predictions", "total")}
    lines.append(f"| **total** | | {total['visible']:g} | {total['hidden']:g} | "
                 f"{total['predictions']:g} | **{total['total']:g}** |")
    return "\n".join(lines) + "\n"


def _solved(prose: str) -> str:
    """A part's prose with the ships-solved note under its first heading."""
    heading, _, rest = prose.partition("\n")
    return f"{heading}\n\n{SOLVED_NOTE}{rest}"


def handout_text(root: Path, parts: tuple[str, ...]) -> str:
    """HANDOUT.md for the chosen parts (see the module docstring)."""
    pieces = [(root / rel).read_text() for rel in HANDOUT_OPENING]
    opened: set[str] = set()
    for name, part in PARTS.items():
        chapter = part.section.split(".")[0]
        if chapter in CHAPTERS and chapter not in opened:
            pieces.append((root / CHAPTERS[chapter]).read_text())
            opened.add(chapter)
        prose = (root / part.prose).read_text()
        pieces.append(prose if name in parts else _solved(prose))
    pieces += [(root / HANDOUT_SUBMIT).read_text(), points_table(root, parts)]
    return "\n".join(piece.rstrip("\n") + "\n" for piece in pieces)


def write_documents(root: Path, out: Path, parts: tuple[str, ...]) -> list[str]:
    """Write HANDOUT.md and README.md into the handout folder `out`."""
    (out / "HANDOUT.md").write_text(handout_text(root, parts))
    titles = ", ".join(f"{PARTS[name].title.lower()} (section {PARTS[name].section})"
                       for name in parts)
    (out / "README.md").write_text(README.format(parts=titles))
    return ["HANDOUT.md", "README.md"]


def unresolved_citations(out: Path) -> list[str]:
    """Every "handout N.M" in a released file that is not a section of out/HANDOUT.md."""
    sections = set(HEADING.findall((out / "HANDOUT.md").read_text()))
    problems = []
    for path in sorted(out.rglob("*")):
        if not path.is_file() or path.suffix not in (".py", ".md", ".sh", ".txt"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for section in CITED.findall(line):
                if section not in sections:
                    problems.append(f"{path.relative_to(out)}:{number}: cites handout "
                                    f"{section}, which HANDOUT.md has no section for")
    return problems

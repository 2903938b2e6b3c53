"""The autograder's command line.

Students (in the handout):
    python -m autograder check                      # the visible cases on your own code
Course staff (in the staff repository):
    python -m autograder init-course [--out course.toml]   # a commented course file
    python -m autograder demo                       # release + grade handout and reference
    python -m autograder release --out DIR [--data ../shared/data]   # the student handout,
                                                    # with HANDOUT.md, README.md and data/
    python -m autograder build-reference            # regenerate autograder/reference/*.npz
    python -m autograder grade SUBMISSION [--json PATH] [--only GROUP ...]
                               [--course course.toml] [--metadata submission_metadata.json]
    python -m autograder grade-all DIR --jobs N --csv gradebook.csv
    sbatch --array=0-$((N-1)) autograder/grade_all.sbatch DIR RESULTS   # on Slurm, then
    python -m autograder gradebook RESULTS --csv gradebook.csv
    python -m autograder build --out autograder.zip # the Gradescope bundle
    python -m autograder similarity DIR --out report.html [--threshold 0.5]  # copied code
Every verb but init-course and build-reference takes the assignment as `--course FILE`
(the parts of its [course] table) or `--parts P ...` (a shortcut); with neither, the staff
tree works on every part (autograder/manifest.py PARTS) and a released tree on its own.
The first line of output says which.  Grade with the flags the handout was released with:
the staff tree then scores a submission exactly as the bundle does.  `--course` also sets
what grading shows before the due date and, with `grade --metadata`, the late policy.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autograder.grade import Layout

ROOT = Path(__file__).resolve().parents[1]


def _assignment(args: argparse.Namespace) -> dict[str, list[str]]:
    """The assignment of the flags `--course`/`--parts`; prints the line saying which."""
    from autograder.parts import chosen_assignment

    chosen, line = chosen_assignment(ROOT, args.course, args.parts)
    print(line)
    return chosen


def _layout(args: argparse.Namespace) -> Layout:
    """The grading layout of this tree for `--course`/`--parts`; prints the line saying
    which parts."""
    from autograder.grade import Layout

    layout, line = Layout.for_flags(args.course, args.parts)
    print(line)
    return layout


def cmd_init_course(args: argparse.Namespace) -> int:
    from autograder.course import example

    out = Path(args.out)
    if out.exists():
        print(f"{out} already exists; pass another --out (nothing written)", file=sys.stderr)
        return 1
    out.write_text(example())
    print(f"wrote {out}: edit it, then pass --course {out} to every verb")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    from autograder.course import load_course
    from autograder.release import check_release, release

    out = Path(args.out)
    parts = tuple(_assignment(args)["parts"])
    course = load_course(args.course) if args.course else None
    written = release(ROOT, out, parts, data=Path(args.data) if args.data else None,
                      course=course)
    problems = check_release(ROOT, out)
    for problem in problems:
        print(f"release check: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"wrote the handout ({len(written)} files) to {out}; read {out / 'HANDOUT.md'}")
    return 0


def cmd_build_reference(args: argparse.Namespace) -> int:
    from autograder.reference import build_reference

    for name, path in build_reference(Path(args.out)).items():
        print(f"wrote {name}: {path}")
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    from autograder.course import load_course
    from autograder.grade import grade
    from autograder.report import table

    layout = _layout(args)
    course = load_course(args.course) if args.course else None
    data = grade(args.submission, json_path=args.json, only=args.only, layout=layout,
                 course=course, metadata=args.metadata)
    print(table(data, f"{args.submission}"))
    print(data["output"].split("\n", 1)[-1][:3000] if "\n" in data["output"] else data["output"])
    if args.json:
        print(f"results written to {args.json}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from autograder.grade import grade
    from autograder.manifest import SOLUTIONS
    from autograder.report import table

    layout = _layout(args)
    if not (ROOT / SOLUTIONS).is_file():
        print("note: here your own functions stand in for the grader's trusted ones (the "
              "layer cases run your attention and add, ...), so one bug can fail more "
              "visible cases here than on Gradescope")
    with tempfile.TemporaryDirectory(prefix="gpt2-check-") as folder:
        for rel in layout.assignment["gradable"]:
            (Path(folder) / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / rel, Path(folder) / rel)
        data = grade(folder, only=args.only, visible_only=True, predictions=False,
                     layout=layout)
    print(table(data, "visible cases on your code (the hidden ones are graded on Gradescope)"))
    for test in data["tests"]:
        if test["status"] != "passed":
            print(f"\n--- {test['name']}\n{test['output']}")
    return 0 if data["tests"] and all(t["status"] == "passed" for t in data["tests"]) else 1


def cmd_grade_all(args: argparse.Namespace) -> int:
    from autograder.batch import grade_all
    from autograder.course import load_course

    layout = _layout(args)
    course = load_course(args.course) if args.course else None
    rows = grade_all(Path(args.folder), Path(args.csv), args.jobs,
                     Path(args.results) if args.results else None, args.only, layout=layout,
                     course=course)
    for row in rows:
        print(f"{row['student']:<30} {row['score']:>7g} / {row['max_score']:<7g} {row['status']}")
    print(f"gradebook: {args.csv} ({len(rows)} submissions)")
    return 0


def cmd_gradebook(args: argparse.Namespace) -> int:
    from autograder.batch import gradebook_from_results

    chosen = _assignment(args)
    rows, foreign = gradebook_from_results(Path(args.results), Path(args.csv), chosen["parts"])
    for problem in foreign:
        print(f"warning: {problem}", file=sys.stderr)
    print(f"gradebook: {args.csv} ({len(rows)} results)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from autograder.demo import run_demo

    return run_demo(Path(args.json), args.only, _assignment(args)["parts"])


def cmd_build(args: argparse.Namespace) -> int:
    from autograder.bundle import build_bundle

    names = build_bundle(ROOT, Path(args.out), tuple(_assignment(args)["parts"]),
                         Path(args.course) if args.course else None)
    print(f"wrote {args.out} ({len(names)} files): upload it as the Gradescope autograder")
    return 0


def cmd_similarity(args: argparse.Namespace) -> int:
    from autograder.similarity import similarity

    pairs = similarity(Path(args.folder), Path(args.out), args.threshold,
                       tuple(_assignment(args)["parts"]))
    for pair in pairs:
        print(f"{pair.similarity:6.1%}  {pair.first} ~ {pair.second}  ({pair.file})")
    print(f"{len(pairs)} pairs above {args.threshold:g}; report: {args.out}")
    return 0


def _fraction(text: str) -> float:
    """argparse type for --threshold: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a number in [0, 1]")
    return value


def _add_assignment(parser: argparse.ArgumentParser) -> None:
    """`--course FILE` or `--parts P ...` (not both): the assignment a verb works on."""
    from autograder.manifest import PARTS

    which = parser.add_mutually_exclusive_group()
    which.add_argument("--course", metavar="FILE",
                       help="the course file (course.toml; see init-course): its parts")
    which.add_argument("--parts", nargs="+", choices=list(PARTS), metavar="PART",
                       help=f"the assignment's parts, a shortcut for a course file (default: "
                            f"those this tree was released with, in the staff tree all of "
                            f"{list(PARTS)})")


def _visible_groups() -> list[str]:
    """The groups of the visible cases of this tree's assignment, in grading order (read
    where grading reads them: the staff tree, a handout, or the bundle's handout)."""
    from autograder.case import all_cases
    from autograder.grade import Layout

    layout = Layout.detect(ROOT)
    cases = all_cases(include_hidden=False, parts=tuple(layout.assignment["parts"]))
    return list(dict.fromkeys(case.group for case in cases))


def _positive_int(text: str) -> int:
    """argparse type for --jobs.  (The Gradescope bundle has no training/args.py, whose
    `bounded` the task scripts use, so the grader keeps this one check of its own.)"""
    if not text.strip().lstrip("+").isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text} is not an integer >= 1")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="run the visible cases on your code")
    groups = _visible_groups()
    check.add_argument("--only", action="append", choices=groups, metavar="GROUP",
                       help=f"run only this case group (repeatable), one of: {', '.join(groups)}")
    _add_assignment(check)
    check.set_defaults(func=cmd_check)
    staff = importlib.util.find_spec("autograder.reference") is not None
    if staff:
        init = commands.add_parser("init-course", help="write a commented example course file")
        init.add_argument("--out", default="course.toml", help="the course file to write")
        init.set_defaults(func=cmd_init_course)
        release = commands.add_parser("release", help="write the student handout")
        release.add_argument("--out", required=True, help="new folder for the handout")
        release.add_argument("--data", metavar="DIR",
                             help="the course data folder (as ../shared/data: cs224n/, "
                                  "gpt2-tokenizer/, tinyshakespeare/) whose student-facing "
                                  "files go to the handout's data/")
        _add_assignment(release)
        release.set_defaults(func=cmd_release)
        reference = commands.add_parser("build-reference", help="regenerate reference outputs")
        reference.add_argument("--out", default=str(ROOT / "autograder" / "reference"))
        reference.set_defaults(func=cmd_build_reference)
        demo = commands.add_parser("demo", help="grade the untouched handout and the reference")
        demo.add_argument("--json", default="results.json", help="results.json of the reference")
        demo.add_argument("--only", action="append", help="case group (repeatable)")
        _add_assignment(demo)
        demo.set_defaults(func=cmd_demo)
        build = commands.add_parser("build", help="make the Gradescope bundle")
        build.add_argument("--out", default="autograder.zip")
        _add_assignment(build)
        build.set_defaults(func=cmd_build)
        similar = commands.add_parser("similarity", help="find submissions that share code")
        similar.add_argument("folder", help="one sub-folder or .zip per student")
        similar.add_argument("--out", default="similarity.html", help="the HTML report")
        similar.add_argument("--threshold", type=_fraction, default=0.5,
                             help="list file pairs more similar than this fraction")
        _add_assignment(similar)
        similar.set_defaults(func=cmd_similarity)
    batch = commands.add_parser("grade-all", help="grade every submission in a folder")
    batch.add_argument("folder", help="one sub-folder or .zip per student")
    batch.add_argument("--jobs", type=_positive_int, default=1,
                       help="submissions graded at once")
    batch.add_argument("--csv", default="gradebook.csv", help="the gradebook to write")
    batch.add_argument("--results", help="folder for each student's results.json")
    batch.add_argument("--only", action="append", help="case group (repeatable)")
    _add_assignment(batch)
    batch.set_defaults(func=cmd_grade_all)
    book = commands.add_parser("gradebook", help="merge a folder of <student>.json results")
    book.add_argument("results", help="folder of results.json files named after students")
    book.add_argument("--csv", default="gradebook.csv")
    _add_assignment(book)
    book.set_defaults(func=cmd_gradebook)
    grade = commands.add_parser("grade", help="grade one submission (zip or folder)")
    grade.add_argument("submission")
    grade.add_argument("--json", help="write results.json here")
    grade.add_argument("--only", action="append", help="case group (repeatable)")
    grade.add_argument("--metadata", help="Gradescope's submission_metadata.json: apply the "
                       "course file's late policy and record the submitters")
    _add_assignment(grade)
    grade.set_defaults(func=cmd_grade)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as error:  # a bad course file or flags: the message names the file
        print(f"python -m autograder {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The autograder's command line.

Students (in the handout):
    python -m autograder check                      # the visible cases on your own code
Course staff (in the staff repository):
    python -m autograder demo [--parts P ...]       # release + grade handout and reference
    python -m autograder release --out DIR [--parts P ...]   # the student handout, with
                                                    # HANDOUT.md and README.md
    python -m autograder build-reference            # regenerate autograder/reference/*.npz
    python -m autograder grade SUBMISSION [--json PATH] [--only GROUP ...]
    python -m autograder grade-all DIR --jobs N --csv gradebook.csv
    sbatch --array=0-$((N-1)) autograder/grade_all.sbatch DIR RESULTS   # on Slurm, then
    python -m autograder gradebook RESULTS --csv gradebook.csv
    python -m autograder build --out autograder.zip [--parts P ...]  # the Gradescope bundle
--parts chooses the assignment's parts (default: all; see autograder/manifest.py PARTS).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cmd_release(args: argparse.Namespace) -> int:
    from autograder.release import check_release, release

    out = Path(args.out)
    written = release(ROOT, out, args.parts)
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
    from autograder.grade import grade
    from autograder.report import table

    data = grade(args.submission, json_path=args.json, only=args.only)
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
    from autograder.parts import assignment
    from autograder.report import table

    if not (ROOT / SOLUTIONS).is_file():
        print("note: here your own functions stand in for the grader's trusted ones (the "
              "layer cases run your attention and add, ...), so one bug can fail more "
              "visible cases here than on Gradescope")
    with tempfile.TemporaryDirectory(prefix="gpt2-check-") as folder:
        for rel in assignment(ROOT)["gradable"]:
            (Path(folder) / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / rel, Path(folder) / rel)
        data = grade(folder, only=args.only, visible_only=True, predictions=False)
    print(table(data, "visible cases on your code (the hidden ones are graded on Gradescope)"))
    for test in data["tests"]:
        if test["status"] != "passed":
            print(f"\n--- {test['name']}\n{test['output']}")
    return 0 if data["tests"] and all(t["status"] == "passed" for t in data["tests"]) else 1


def cmd_grade_all(args: argparse.Namespace) -> int:
    from autograder.batch import grade_all

    rows = grade_all(Path(args.folder), Path(args.csv), args.jobs,
                     Path(args.results) if args.results else None, args.only)
    for row in rows:
        print(f"{row['student']:<30} {row['score']:>7g} / {row['max_score']:<7g} {row['status']}")
    print(f"gradebook: {args.csv} ({len(rows)} submissions)")
    return 0


def cmd_gradebook(args: argparse.Namespace) -> int:
    from autograder.batch import gradebook_from_results

    rows = gradebook_from_results(Path(args.results), Path(args.csv))
    print(f"gradebook: {args.csv} ({len(rows)} results)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from autograder.demo import run_demo

    return run_demo(Path(args.json), args.only, args.parts)


def cmd_build(args: argparse.Namespace) -> int:
    from autograder.bundle import build_bundle

    names = build_bundle(ROOT, Path(args.out), args.parts)
    print(f"wrote {args.out} ({len(names)} files): upload it as the Gradescope autograder")
    return 0


def _add_parts(parser: argparse.ArgumentParser) -> None:
    from autograder.manifest import PARTS

    parser.add_argument("--parts", nargs="+", choices=list(PARTS), metavar="PART",
                        help=f"the assignment's parts (default: all of {list(PARTS)})")


def _visible_groups() -> list[str]:
    """The groups of the visible cases of this tree's assignment, in grading order (read
    where grading reads them: the staff tree, a handout, or the bundle's handout)."""
    from autograder.case import all_cases
    from autograder.grade import Layout

    layout = Layout.detect(ROOT)
    cases = all_cases(include_hidden=False, parts=tuple(layout.assignment["parts"]),
                      root=layout.code_root)
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
    check.set_defaults(func=cmd_check)
    staff = importlib.util.find_spec("autograder.reference") is not None
    if staff:
        release = commands.add_parser("release", help="write the student handout")
        release.add_argument("--out", required=True, help="new folder for the handout")
        _add_parts(release)
        release.set_defaults(func=cmd_release)
        reference = commands.add_parser("build-reference", help="regenerate reference outputs")
        reference.add_argument("--out", default=str(ROOT / "autograder" / "reference"))
        reference.set_defaults(func=cmd_build_reference)
        demo = commands.add_parser("demo", help="grade the untouched handout and the reference")
        demo.add_argument("--json", default="results.json", help="results.json of the reference")
        demo.add_argument("--only", action="append", help="case group (repeatable)")
        _add_parts(demo)
        demo.set_defaults(func=cmd_demo)
        build = commands.add_parser("build", help="make the Gradescope bundle")
        build.add_argument("--out", default="autograder.zip")
        _add_parts(build)
        build.set_defaults(func=cmd_build)
    batch = commands.add_parser("grade-all", help="grade every submission in a folder")
    batch.add_argument("folder", help="one sub-folder or .zip per student")
    batch.add_argument("--jobs", type=_positive_int, default=1,
                       help="submissions graded at once")
    batch.add_argument("--csv", default="gradebook.csv", help="the gradebook to write")
    batch.add_argument("--results", help="folder for each student's results.json")
    batch.add_argument("--only", action="append", help="case group (repeatable)")
    batch.set_defaults(func=cmd_grade_all)
    book = commands.add_parser("gradebook", help="merge a folder of <student>.json results")
    book.add_argument("results", help="folder of results.json files named after students")
    book.add_argument("--csv", default="gradebook.csv")
    book.set_defaults(func=cmd_gradebook)
    grade = commands.add_parser("grade", help="grade one submission (zip or folder)")
    grade.add_argument("submission")
    grade.add_argument("--json", help="write results.json here")
    grade.add_argument("--only", action="append", help="case group (repeatable)")
    grade.set_defaults(func=cmd_grade)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

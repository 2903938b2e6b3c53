"""The autograder's command line.

Students (in the handout):
    python -m autograder check                      # the visible cases on your own code
Course staff (in the staff repository):
    python -m autograder demo                       # release + grade handout and reference
    python -m autograder release --out DIR          # write the student handout to DIR
    python -m autograder build-reference            # regenerate autograder/reference/*.npz
    python -m autograder grade SUBMISSION [--json PATH] [--only GROUP ...]
    python -m autograder grade-all DIR --jobs N --csv gradebook.csv
    python -m autograder build --out autograder.zip # the Gradescope bundle
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
    written = release(ROOT, out)
    problems = check_release(ROOT, out)
    for problem in problems:
        print(f"release check: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"wrote the handout ({len(written)} files) to {out}")
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
    from autograder.grade import Layout, grade
    from autograder.report import table

    layout = Layout.detect()
    data = grade(ROOT, only=args.only, layout=layout, visible_only=True, predictions=False)
    print(table(data, "visible cases on your code (the hidden ones are graded on Gradescope)"))
    for test in data["tests"]:
        if test["status"] != "passed":
            print(f"\n--- {test['name']}\n{test['output']}")
    return 0 if data["tests"] and all(t["status"] == "passed" for t in data["tests"]) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="run the visible cases on your code")
    check.add_argument("--only", action="append", help="case group (repeatable)")
    check.set_defaults(func=cmd_check)
    staff = importlib.util.find_spec("autograder.reference") is not None
    if staff:
        release = commands.add_parser("release", help="write the student handout")
        release.add_argument("--out", required=True, help="new folder for the handout")
        release.set_defaults(func=cmd_release)
        reference = commands.add_parser("build-reference", help="regenerate reference outputs")
        reference.add_argument("--out", default=str(ROOT / "autograder" / "reference"))
        reference.set_defaults(func=cmd_build_reference)
    grade = commands.add_parser("grade", help="grade one submission (zip or folder)")
    grade.add_argument("submission")
    grade.add_argument("--json", help="write results.json here")
    grade.add_argument("--only", action="append", help="case group (repeatable)")
    grade.set_defaults(func=cmd_grade)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

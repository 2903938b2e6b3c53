"""Course-staff commands.

    python -m autograder release --out DIR   # write the student handout to DIR and check it
"""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    release = commands.add_parser("release", help="write the student handout")
    release.add_argument("--out", required=True, help="new folder for the handout")
    release.set_defaults(func=cmd_release)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

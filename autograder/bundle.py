"""`python -m autograder build --out autograder.zip`: the Gradescope bundle (staff only).

Gradescope unpacks the zip into /autograder/source, runs `setup.sh` once as root when it
builds the image, then for each submission copies `run_autograder` to /autograder and runs
it with the student's files in /autograder/submission; it reads
/autograder/results/results.json.  The bundle holds:

    setup.sh, run_autograder, requirements.txt   Gradescope's entry points and the runtime
                                                 pins of pyproject.toml, the handout's (see
                                                 autograder/environment.py)
    autograder/                                  this package: judge, hidden cases,
                                                 reference outputs, hidden labels, the
                                                 trusted solutions (producers/solutions.py)
    handout/                                     the released handout (no solution)
    autograder/assignment.json                   the parts this bundle grades
    course.toml                                  the course file, when built with one
                                                 (visibility, late policy, answer keys)
    evaluation.py, data/TRUE_sonnets_held_out_dev.txt
                                                 what grading predictions reads from the
                                                 root (`predictions.root_files`), when
                                                 the tasks are a part and the data is there

For each submission `run_autograder` grades with the bundle's `course.toml` (when there is
one) and Gradescope's `submission_metadata.json` beside the submission (when there is
one), so the course file's late policy and visibility apply (`autograder/latepolicy.py`).
`AUTOGRADER_ROOT` (default /autograder) and `AUTOGRADER_PYTHON` let a temporary folder
stand in for /autograder; `AUTOGRADER_SKIP_INSTALL=1` makes setup.sh skip the installs.
"""

from __future__ import annotations

import stat
import tempfile
import zipfile
from pathlib import Path

from autograder.course import COURSE_FILE, load_course
from autograder.environment import BUNDLE_REQUIREMENTS, requirements
from autograder.parts import ASSIGNMENT, assignment
from autograder.predictions import root_files
from autograder.release import release

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
set -euo pipefail
SOURCE="$(cd "$(dirname "$0")" && pwd)"
ROOT="${AUTOGRADER_ROOT:-/autograder}"
# The unprivileged user the student's code runs as (see autograder/sandbox.py).
id gpt2grader >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin gpt2grader
if [ "${AUTOGRADER_SKIP_INSTALL:-0}" != 1 ]; then
    apt-get update -q
    apt-get install -y -q python3 python3-venv python3-pip util-linux
    python3 -m venv "$ROOT/venv"
    "$ROOT/venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
        echo "[setup] the autograder needs Python 3.11 or newer (Gradescope's Ubuntu 24.04 base image)" >&2
        exit 1
    }
    "$ROOT/venv/bin/pip" install -q --no-cache-dir \\
        --extra-index-url https://download.pytorch.org/whl/cpu -r "$SOURCE/requirements.txt"
fi
# Every pin imports (the environment students were given is the one that grades them).
(cd "$SOURCE" && "${AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}" -m autograder.environment)
# Reference outputs, hidden case definitions, hidden labels and the trusted solutions:
# readable by root (the judge, and the child before it drops privileges) only.
chmod 0700 "$SOURCE/autograder/reference" "$SOURCE/autograder/cases"
chmod 0600 "$SOURCE/autograder/producers/solutions.py"
[ -d "$SOURCE/autograder/hidden" ] && chmod 0700 "$SOURCE/autograder/hidden"
[ -f "$SOURCE/course.toml" ] && chmod 0600 "$SOURCE/course.toml"
echo "[setup] autograder ready"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission; results.json is written whatever happens.
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}"
RESULTS="$ROOT/results/results.json"
mkdir -p "$ROOT/results"
cd "$ROOT/source" || exit 0
OPTIONS=()
[ -f course.toml ] && OPTIONS+=(--course course.toml)
[ -f "$ROOT/submission_metadata.json" ] && OPTIONS+=(--metadata "$ROOT/submission_metadata.json")
"$PYTHON" -m autograder grade "$ROOT/submission" --json "$RESULTS" "${OPTIONS[@]}"
if [ ! -s "$RESULTS" ]; then
    printf '%s\\n' '{"score": 0.0, "execution_time": 0, "visibility": "visible", "tests": [], "leaderboard": [], "output": "The autograder failed before it could write results; please tell the course staff."}' > "$RESULTS"
fi
exit 0
"""


def requirements_txt(root: Path) -> str:
    """Every runtime pin of `root/pyproject.toml`, one per line (the bundle has no pyproject)."""
    return "\n".join(requirements(root)) + "\n"


def _add(archive: zipfile.ZipFile, arcname: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def build_bundle(root: Path, out: Path, parts: tuple[str, ...] | None = None,
                 course: Path | None = None) -> list[str]:
    """Write the bundle zip of the assignment of `parts` (default: the course file's parts,
    else every part) to `out`, with the course file `course` when given; returns its
    member names."""
    names = []
    if course is not None:
        parts = parts or load_course(course).parts
    chosen = assignment(root, parts)
    with tempfile.TemporaryDirectory(prefix="gpt2-bundle-") as folder:
        handout = Path(folder) / "handout"
        release(root, handout, tuple(chosen["parts"]))
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w") as archive:
            for arcname, text, executable in (("setup.sh", SETUP_SH, True),
                                              ("run_autograder", RUN_AUTOGRADER, True),
                                              (BUNDLE_REQUIREMENTS, requirements_txt(root),
                                               False)):
                _add(archive, arcname, text.encode(), executable)
                names.append(arcname)
            sources = [(p, p.relative_to(root).as_posix())
                       for p in sorted((root / "autograder").rglob("*")) if p.is_file()]
            sources += [(p, "handout/" + p.relative_to(handout).as_posix())
                        for p in sorted(handout.rglob("*")) if p.is_file()]
            sources.append((handout / ASSIGNMENT, ASSIGNMENT))
            if course is not None:
                sources.append((course, COURSE_FILE))
            sources += [(root / rel, rel) for rel in root_files()
                        if chosen["predictions"] and (root / rel).is_file()]
            for path, arcname in sources:
                if "__pycache__" in arcname or arcname.endswith(".pyc"):
                    continue
                _add(archive, arcname, path.read_bytes(), executable=arcname.endswith(".sh"))
                names.append(arcname)
    return names

"""Grade one submission: unpack, stage, produce in the sandbox, judge, report.

Where the handout and the secrets come from depends on the tree this package sits in
(`Layout.detect`): the staff repository (the handout is released on the fly), the
Gradescope bundle (`handout/` beside `autograder/`), or a student's handout (`check`: the
student's own files, visible cases only).  The assignment's parts come from the same
tree (`autograder/parts.py`), in the staff tree from the verb's `--course`/`--parts`
(`Layout.for_flags`; every part without either): only their cases and files are graded.
`grade` never raises: any failure becomes a valid results.json with score 0 and the reason.

The child gets a trusted copy of `CHILD_FILES` and of every file of
`autograder/producers/` (a new producer module is found without being listed), and
nothing else of this package.  A grader that holds hidden cases (the staff tree, the
bundle) must hold the staff module of trusted solutions too (`SOLUTIONS`): without it the
grade is an internal error, never a silent fall back to the submission's own functions.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autograder import npzio, sandbox
from autograder.answers import GROUP as QUESTIONS
from autograder.answers import grade_choice
from autograder.case import Case, all_cases, rules_in_words, select
from autograder.course import ANSWERS_FILE, Course
from autograder.fences import STAFF_BEGIN, write_code
from autograder.isolation import lock_secrets
from autograder.judge import MAX_FEEDBACK, Verdict, judge_all
from autograder.latepolicy import apply_late_policy, read_metadata
from autograder.manifest import HANDOUT_FILES, SOLUTIONS
from autograder.parts import assignment, chosen_assignment
from autograder.report import Results, TestResult, crash_results, to_json, write_json
from autograder.unpack import SubmissionError, read_submission, refuse_grader_names

ROOT = Path(__file__).resolve().parents[1]
CHILD_FILES = ("autograder/__init__.py", "autograder/child.py", "autograder/npzio.py")


def child_files(root: Path) -> list[str]:
    """CHILD_FILES and the producers' package, relative to `root`."""
    producers = sorted(p.relative_to(root).as_posix()
                       for p in (root / "autograder" / "producers").glob("*.py"))
    return [*CHILD_FILES, *producers]


@dataclass
class Layout:
    root: Path  # the tree holding this autograder package
    handout: Path | None  # a released handout to stage onto (None: release from root)
    hidden_cases: bool  # whether hidden cases (and their reference) are here
    parts: tuple[str, ...] | None = None  # None: the parts of `assignment.json` (or all)

    @property
    def assignment(self) -> dict[str, list[str]]:
        """The parts and the files a submission carries (`autograder/parts.py`)."""
        if self.parts is not None:
            return assignment(self.root, self.parts)
        tree = self.handout if self.handout and self.handout != self.root else self.root
        return assignment(tree)

    @property
    def reference_dir(self) -> Path:
        return self.root / "autograder" / "reference"

    @property
    def labels_dir(self) -> Path:
        return self.root / "autograder" / "hidden"

    @classmethod
    def detect(cls, root: Path = ROOT) -> Layout:
        hidden = any(STAFF_BEGIN in path.read_text()
                     for path in (root / "autograder" / "cases").glob("*.py"))
        if (root / "handout" / "config.py").is_file():
            return cls(root, root / "handout", hidden)
        if hidden:
            return cls(root, None, True)
        return cls(root, root, False)

    @classmethod
    def for_flags(cls, course: str | Path | None = None, parts: list[str] | None = None,
                  root: Path = ROOT) -> tuple[Layout, str]:
        """This tree's layout grading the assignment of the flags `--course`/`--parts`
        (`parts.chosen_assignment`), and the line that says which parts."""
        layout = cls.detect(root)
        chosen, line = chosen_assignment(layout.handout or layout.root, course, parts)
        if layout.handout is None:
            layout.parts = tuple(chosen["parts"])
        return layout, line


def load_reference(layout: Layout) -> dict[str, np.ndarray]:
    """All reference arrays of this tree, keyed `<case name>/<array>`."""
    arrays: dict[str, np.ndarray] = {}
    for name in ("visible.npz", "hidden.npz"):
        path = layout.reference_dir / name
        if path.is_file():
            arrays.update(npzio.load(path))
    return arrays


def _read_only(folder: Path) -> None:
    """Every file and folder under `folder` readable, not writable, by the sandbox user."""
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def stage_trusted(layout: Layout, run_dir: Path) -> Path:
    """`run_dir/trusted`: the child's own code, read-only for the sandbox user, the staff
    module of trusted solutions readable by its owner only (root, on Gradescope: the child
    loads it before it drops privileges).  FileNotFoundError when hidden cases are here but
    that module is not."""
    if layout.hidden_cases and not (layout.root / SOLUTIONS).is_file():
        raise FileNotFoundError(f"{layout.root / SOLUTIONS} is missing, but this grader holds "
                                "hidden cases: rebuild the bundle from the staff tree")
    trusted = run_dir / "trusted"
    for rel in child_files(layout.root):
        if (layout.root / rel).is_file():
            (trusted / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(layout.root / rel, trusted / rel)
    _read_only(trusted)
    if (trusted / SOLUTIONS).is_file():
        (trusted / SOLUTIONS).chmod(0o600)
    return trusted


def stage_code(layout: Layout, files: dict[str, bytes], run_dir: Path) -> Path:
    """`run_dir/stage`: the handout with the submission's gradable files of the assignment
    on top, read-only for the sandbox user."""
    stage = run_dir / "stage"
    handout, gradable = layout.handout, layout.assignment["gradable"]
    if handout is None:
        handout = run_dir / "handout"
        write_code(layout.root, handout, layout.parts)
    for rel in HANDOUT_FILES:
        if rel.startswith("autograder/") or not (handout / rel).is_file():
            continue
        (stage / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(handout / rel, stage / rel)
    for rel, data in files.items():
        if rel in gradable:
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            (stage / rel).write_bytes(data)
    stage.mkdir(parents=True, exist_ok=True)
    _read_only(stage)
    return stage


def stage_submission(layout: Layout, files: dict[str, bytes], run_dir: Path) -> tuple[Path, Path]:
    """(`stage_code`, `stage_trusted`): both at once, for a run that need not overlap them
    with the child's start."""
    trusted = stage_trusted(layout, run_dir)
    return stage_code(layout, files, run_dir), trusted


def case_feedback(verdict: Verdict) -> str:
    """The judge's feedback, then (for a failed case) every rule the case depends on, in
    words (`rules_in_words`); at most 4000 UTF-8 bytes, the judge's feedback cut first so
    that the rules stay."""
    rules = "" if verdict.passed else rules_in_words(verdict.case)
    room = MAX_FEEDBACK - len(rules.encode()) - 1
    body = verdict.feedback.strip()
    if len(body.encode()) > room:
        body = body.encode()[: max(room - 12, 0)].decode("utf-8", "ignore") + " [... cut]"
    return "\n".join(part for part in (body, rules) if part)


def case_tests(cases: list[Case], verdicts: list[Verdict]) -> list[TestResult]:
    """One Gradescope test per case, numbered <group>.<case> (see `case_feedback`)."""
    groups = list(dict.fromkeys(c.group for c in cases))
    counters: dict[str, int] = {}
    tests = []
    for verdict in verdicts:
        case = verdict.case
        counters[case.group] = counters.get(case.group, 0) + 1
        name = case.title if case.title.startswith(case.group) else f"{case.group}: {case.title}"
        tests.append(TestResult(name, f"{groups.index(case.group) + 1}.{counters[case.group]}",
                                verdict.score, case.points, case_feedback(verdict),
                                case.visibility, case.group, case.name))
    return tests


def grade(submission: str | Path, *, json_path: str | Path | None = None,
          only: list[str] | None = None, layout: Layout | None = None,
          visible_only: bool = False, predictions: bool = True,
          limits: sandbox.Limits | None = None, course: Course | None = None,
          metadata: str | Path | None = None) -> dict:
    """Grade `submission` (zip or folder); returns the results.json dict (also written to
    `json_path` when given, whatever happens).

    `only` restricts grading to some case groups; the pseudo-group "predictions" stands
    for the prediction files (graded when `only` is empty or names it), "questions" for
    the course's multiple-choice questions (`answers.toml`, graded against the course
    file's keys, `autograder/answers.py`; never with `visible_only`).  `course` also sets
    the visibility before the due date and the late policy, which applies when `metadata`
    (Gradescope's submission_metadata.json, which also names the submitters) is given
    (`autograder/latepolicy.py`).
    """
    start = time.monotonic()
    layout = layout or Layout.detect()
    try:
        results = _grade(Path(submission), layout, only, visible_only, predictions,
                         limits or sandbox.Limits(), start, course)
        data = to_json(results, course)
    except SubmissionError as error:
        data = crash_results(str(error), time.monotonic() - start)
    except Exception as error:  # the grader's own failure still yields a results.json
        detail = "".join(traceback.format_exception_only(type(error), error)).strip()
        data = crash_results(f"internal grader error: {detail}", time.monotonic() - start)
    if metadata is not None:
        try:
            data = apply_late_policy(data, course, read_metadata(metadata))
        except ValueError as error:
            data = crash_results(f"the submission metadata is unusable: {error}",
                                 time.monotonic() - start)
    if json_path is not None:
        write_json(json_path, data)
    return data


def _grade(submission: Path, layout: Layout, only: list[str] | None, visible_only: bool,
           predictions: bool, limits: sandbox.Limits, start: float,
           course: Course | None) -> Results:
    chosen = layout.assignment
    groups = [group for group in only or [] if group not in ("predictions", QUESTIONS)]
    cases = select(all_cases(include_hidden=layout.hidden_cases and not visible_only,
                             parts=tuple(chosen["parts"])), groups)
    if only and not groups:
        cases = []
    lock_secrets([layout.reference_dir, layout.labels_dir, layout.root / "autograder" / "cases",
                  layout.root / SOLUTIONS])
    tests: list[TestResult] = []
    read: dict = {}  # what `prepare` read: the submission's files, the notes, the reference
    run_dir = Path(tempfile.mkdtemp(prefix="gpt2-grade-"))

    def prepare() -> None:
        """Read and stage the submission and load the reference (while the child starts)."""
        files, notes = read_submission(submission, [*chosen["gradable"], *chosen["predictions"],
                                                    ANSWERS_FILE])
        refuse_grader_names({rel: data for rel, data in files.items()
                             if rel in chosen["gradable"]})
        missing = [rel for rel in chosen["gradable"] if rel not in files]
        if missing:
            notes.append(f"not in the submission, the handout's version is used: {missing}")
        if cases:
            stage_code(layout, files, run_dir)
        read.update(files=files, notes=notes, reference=load_reference(layout))

    try:
        if cases:
            trusted = stage_trusted(layout, run_dir)
            runs, child_log, iso_notes = sandbox.run_cases(
                cases, run_dir, run_dir / "stage", trusted, limits, layout.hidden_cases, prepare)
            tests += case_tests(cases, judge_all(cases, runs, read["reference"],
                                                 run_dir / "stage"))
            read["notes"] += iso_notes
            if child_log.strip():
                read["notes"].append("your code's printed output (cut):\n" + child_log[-2000:])
        else:
            prepare()
        files, notes = read["files"], read["notes"]
        leaderboard = []
        if predictions and chosen["predictions"] and (not only or "predictions" in only):
            from autograder.predictions import grade_predictions

            prediction_tests, leaderboard = grade_predictions(files, layout.labels_dir)
            tests += prediction_tests
        if course and course.choice and not visible_only and (not only or QUESTIONS in only):
            answers = files.get(ANSWERS_FILE)
            tests += grade_choice(course, None if answers is None
                                  else answers.decode("utf-8", "replace"))
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return Results(tests, time.monotonic() - start, notes, leaderboard)

"""Grade submitted prediction files against hidden labels (the judge alone; no student code).

Files (the format is `evaluation.py`'s): `predictions/{sst,cfimdb,para}-{dev,test}-output.csv`
(`id,prediction`, integer labels) and `predictions/generated_sonnets{_dev,}.txt` (the course
sonnet layout).  Classification is scored with accuracy and macro-F1 (scikit-learn), sonnets
with chrF (sacrebleu).  Points come from `TASKS`: a task earns the points of the highest
threshold its metric reaches; edit the table to change them.  Test metrics feed the
Gradescope leaderboard.  A missing file scores 0 with a message; malformed lines are
reported with their line numbers; a task whose labels are absent on this grader says so.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from autograder.report import TestResult

MAX_LISTED_ERRORS = 10


@dataclass(frozen=True)
class PredictionTask:
    name: str
    file: str  # path inside the submission
    labels: str  # file in the labels folder (autograder/hidden/), or a path from the root
    metric: str  # "accuracy" or "chrf"
    thresholds: tuple[tuple[float, float], ...]  # (metric at least, points), increasing
    leaderboard: str | None = None
    visibility: str = "after_due_date"
    script: str = ""  # what writes the file, for the "missing" message
    needs_complete: bool = False  # points only when every id is predicted, no bad lines

    @property
    def points(self) -> float:
        return max((p for _, p in self.thresholds), default=0.0)


def _classification(task: str, split: str, thresholds, script: str) -> PredictionTask:
    board = f"{task.upper()} {split} accuracy" if split == "test" else None
    return PredictionTask(f"{task}-{split}", f"predictions/{task}-{split}-output.csv",
                          f"{task}-{split}-labels.csv", "accuracy", thresholds, board,
                          "visible" if split == "dev" else "after_due_date", script,
                          needs_complete=split == "dev")


TASKS: tuple[PredictionTask, ...] = (
    _classification("sst", "dev", ((0.0, 1.0),), "classifier.py"),
    _classification("sst", "test", ((0.40, 2.0), (0.48, 4.0)), "classifier.py"),
    _classification("cfimdb", "dev", ((0.0, 1.0),), "classifier.py"),
    _classification("cfimdb", "test", ((0.80, 2.0), (0.92, 4.0)), "classifier.py"),
    _classification("para", "dev", ((0.0, 1.0),), "paraphrase_detection.py"),
    _classification("para", "test", ((0.75, 2.0), (0.85, 4.0)), "paraphrase_detection.py"),
    PredictionTask("sonnets-dev", "predictions/generated_sonnets_dev.txt",
                   "data/TRUE_sonnets_held_out_dev.txt", "chrf", ((0.0, 1.0),), None,
                   "visible", "sonnet_generation.py", needs_complete=True),
    # Full-sonnet chrF on the 12 test sonnets (2026-11-24): the given lines alone 25.0; a
    # random 2-layer model trained one epoch 32.9; the given lines followed by the rest of a
    # different real sonnet 41.2 to 41.9.  The thresholds sit above the first two.
    PredictionTask("sonnets-test", "predictions/generated_sonnets.txt",
                   "sonnets-test-true.txt", "chrf", ((35.0, 2.0), (40.0, 4.0)),
                   "Sonnet test chrF", "after_due_date", "sonnet_generation.py"),
)


READER = "evaluation.py"  # the trusted reader of prediction files, beside autograder/


def root_files() -> list[str]:
    """What grading predictions reads from the tree above `autograder/`: the reader and
    the labels given as paths from the root (the Gradescope bundle carries these)."""
    return [READER] + [task.labels for task in TASKS if "/" in task.labels]


def _evaluation():
    """The staff tree's (or bundle's) evaluation.py: trusted, never the submission's."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    import evaluation

    return evaluation


def _score_classification(task, path: Path, labels_path: Path) -> tuple[float, list[str], str]:
    evaluation = _evaluation()
    predicted, errors = evaluation.read_predictions(path)
    truth, _ = evaluation.read_predictions(labels_path, column="label")
    missing = [i for i in truth if i not in predicted]
    extra = [i for i in predicted if i not in truth]
    if missing:
        errors.append(f"{len(missing)} of {len(truth)} ids have no prediction (counted wrong), "
                      f"e.g. {missing[0]}")
    if extra:
        errors.append(f"{len(extra)} ids are not in this split (ignored), e.g. {extra[0]}")
    ids = list(truth)
    accuracy, f1 = evaluation.accuracy_f1([truth[i] for i in ids],
                                          [predicted.get(i, -1) for i in ids])
    return accuracy, errors, f"accuracy {accuracy:.4f}, macro-F1 {f1:.4f} on {len(ids)} examples"


def _score_sonnets(path: Path, labels_path: Path) -> tuple[float, list[str], str]:
    evaluation = _evaluation()
    generated = evaluation.read_sonnets(path)
    true = evaluation.read_sonnets(labels_path)
    score, errors = evaluation.sonnet_chrf(generated, true)
    return score, errors, f"chrF {score:.2f} on {len(true)} sonnets"


def grade_task(task: PredictionTask, files: dict[str, bytes], labels_dir: Path,
               number: str) -> tuple[TestResult, dict | None]:
    """(the test, its leaderboard entry or None)."""
    name = f"predictions: {task.name} ({task.metric})"
    result = TestResult(name, number, 0.0, task.points, "", task.visibility, "predictions",
                        f"predictions/{task.name}")
    labels_path = (labels_dir.parents[1] if "/" in task.labels else labels_dir) / task.labels
    if not labels_path.is_file():
        result.max_score = 0.0
        shown = labels_path.relative_to(labels_dir.parents[1])
        result.output = (f"not scored: no labels here ({shown} is missing).  Staff: write "
                         "them with `python data/prepare.py "
                         "--from ../shared/data/cs224n --tokenizer ../shared/data/gpt2-tokenizer "
                         "--staff`")
        return result, None
    if task.file not in files:
        result.output = (f"missing file {task.file}: write it with {task.script} and submit it "
                         "(prepare_submit.py packs it)")
        return result, None
    with tempfile.TemporaryDirectory(prefix="gpt2-pred-") as folder:
        path = Path(folder) / Path(task.file).name
        path.write_bytes(files[task.file])
        if task.metric == "chrf":
            value, errors, summary = _score_sonnets(path, labels_path)
        else:
            value, errors, summary = _score_classification(task, path, labels_path)
    result.score = max((p for t, p in task.thresholds if value >= t), default=0.0)
    if task.needs_complete and errors:
        result.score = 0.0
        errors.insert(0, "this file earns its point only when complete and well-formed")
    levels = ", ".join(f"{t:g} -> {p:g} pts" for t, p in task.thresholds if p)
    lines = [summary] + ([f"thresholds: {levels}"] if levels else [])
    lines += [error.replace(str(path), task.file) for error in errors[:MAX_LISTED_ERRORS]]
    if len(errors) > MAX_LISTED_ERRORS:
        lines.append(f"... {len(errors) - MAX_LISTED_ERRORS} more problems")
    result.output = "\n".join(lines)
    entry = {"name": task.leaderboard, "value": round(value, 4)} if task.leaderboard else None
    return result, entry


def grade_predictions(files: dict[str, bytes], labels_dir: Path,
                      tasks: tuple[PredictionTask, ...] = TASKS) -> tuple[list[TestResult], list]:
    """Every prediction test and the leaderboard entries."""
    tests, board = [], []
    for index, task in enumerate(tasks, start=1):
        test, entry = grade_task(task, files, labels_dir, f"9.{index}")
        tests.append(test)
        if entry:
            board.append(entry)
    return tests, board

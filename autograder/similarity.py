"""`python -m autograder similarity DIR --out report.html [--threshold T]` (staff only).

Compares the submissions of a class with `copydetect` (winnowed fingerprints of the
tokenized code, the method of MOSS), offline.  Every entry of DIR (a folder or a .zip per
student, named after the student, as for `grade-all`) contributes its gradable Python
files of the assignment; each file is compared with the file of the same path in every
other submission.  The released handout of the same parts is the boilerplate: code that
is in the starter files (docstrings, signatures, the solved parts) never counts as shared.

The HTML report (copydetect's, with the shared code highlighted; its page style loads from
a CDN and the page reads without it) names files as `<student>/<path>`.  `similarity`
returns the pairs of submissions whose copy of a file is more similar than `threshold`
(the larger of the two directions' fractions of shared fingerprints), most similar first.
An entry that cannot be read (a broken zip) is left out and named on stderr.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from copydetect import CopyDetector

from autograder.batch import submissions
from autograder.parts import assignment
from autograder.release import release
from autograder.unpack import SubmissionError, read_submission

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Pair:
    first: str  # student
    second: str  # student, after `first` by name
    file: str  # the gradable file they share, e.g. "models/gpt2.py"
    similarity: float  # in [0, 1]


def _write(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)


def similarity(folder: Path, out: Path, threshold: float = 0.5,
               parts: tuple[str, ...] | None = None, root: Path = ROOT) -> list[Pair]:
    """Compare the submissions in `folder`; write the HTML report to `out`; return the
    pairs above `threshold`.  `parts` chooses the assignment (default: every part)."""
    gradable = [rel for rel in assignment(root, parts)["gradable"] if rel.endswith(".py")]
    with tempfile.TemporaryDirectory(prefix="gpt2-similarity-") as work:
        work_dir = Path(work)
        handout = work_dir / "handout"
        release(root, handout, parts)
        _write(work_dir / "boilerplate", {rel: (handout / rel).read_bytes() for rel in gradable
                                          if (handout / rel).is_file()})
        classes = work_dir / "class"
        for entry in submissions(folder):
            try:
                files, _ = read_submission(entry, gradable)
            except SubmissionError as error:
                print(f"similarity: {entry.name} left out: {error}", file=sys.stderr)
                continue
            _write(classes / entry.stem, {rel: data for rel, data in files.items()
                                          if rel in gradable})
        classes.mkdir(exist_ok=True)
        detector = CopyDetector(test_dirs=[str(classes)], ref_dirs=[str(classes)],
                                boilerplate_dirs=[str(work_dir / "boilerplate")],
                                extensions=["py"], display_t=threshold, same_name_only=True,
                                autoopen=False, silent=True, out_file=str(out))
        detector.run()
        pairs = _pairs(detector, classes, threshold)
        html = (detector.generate_html_report(output_mode="return")
                if len(detector.similarity_matrix) else None)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html.replace(str(classes) + "/", "").replace(work, "<work>") if html else
                   "<html><body><p>No submission has a gradable file to compare.</p>"
                   "</body></html>\n")
    return pairs


def _pairs(detector: CopyDetector, classes: Path, threshold: float) -> list[Pair]:
    """The student pairs whose file of the same name is more similar than `threshold`."""
    if len(detector.similarity_matrix) == 0:
        return []
    tests, refs = ([Path(f).relative_to(classes).parts for f in files]
                   for files in (detector.test_files, detector.ref_files))
    found = []
    for i, (first, *rel) in enumerate(tests):
        for j, (second, *other) in enumerate(refs):
            if first >= second or rel != other:
                continue
            value = float(max(detector.similarity_matrix[i, j]))
            if value > threshold:
                found.append(Pair(first, second, "/".join(rel), round(value, 4)))
    return sorted(found, key=lambda pair: (-pair.similarity, pair.first, pair.second))

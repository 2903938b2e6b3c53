"""How long one complete grading takes, and how much memory it needs.

    python bench/grade_speed.py                   # grade the reference solution once
    python bench/grade_speed.py --submission DIR  # or any submission (folder or zip)

Grades every case group (plus the prediction files, when this machine has the hidden
labels: the benchmark then writes perfect predictions from them) and prints the wall time
and the peak memory: the resident set of the grader and all its descendants together,
sampled every 20 ms, and the largest single child as the kernel counts it.  Exits 1 when a
grading takes more than 60 s or more than 2 GB, the budgets of the course (the Gradescope
autograder needs a container with at least 3 GB of memory; see the README).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from autograder.grade import Layout, grade
from autograder.parts import assignment
from autograder.predictions import TASKS
from training.helpformat import HelpFormatter

REPO = Path(__file__).resolve().parents[1]

MAX_SECONDS = 60.0
MAX_BYTES = 2 << 30


def reference_submission(folder: Path) -> Path:
    """The reference's gradable files, plus perfect predictions (copies of the labels) where
    this machine has the labels."""
    for rel in assignment(REPO)["gradable"]:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / rel, folder / rel)
    labels = Layout.detect().labels_dir
    for task in TASKS:
        source = labels / task.labels
        if "/" in task.labels:
            source = REPO / task.labels
        if source.is_file():
            (folder / task.file).parent.mkdir(parents=True, exist_ok=True)
            text = source.read_text().replace("id,label", "id,prediction", 1)
            (folder / task.file).write_text(text)
    return folder


class TreeMemory:
    """Peak summed RSS of this process and its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--submission", help="folder or zip (default: the reference solution)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gpt2-bench-") as folder:
        submission = args.submission or reference_submission(Path(folder) / "reference")
        start = time.monotonic()
        with TreeMemory() as memory:
            data = grade(submission)
        wall = time.monotonic() - start
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss << 10
    score = f"{data['score']:g} / {sum(t['max_score'] for t in data['tests']):g}"
    print(f"[grade_speed] {len(data['tests'])} tests, score {score}")
    print(f"[grade_speed] wall time: {wall:.1f} s (budget {MAX_SECONDS:.0f} s)")
    print(f"[grade_speed] peak memory: {memory.peak / 2**20:.0f} MB for the grader and its "
          f"children together (budget {MAX_BYTES >> 20} MB); largest child "
          f"{child_peak / 2**20:.0f} MB")
    return 0 if wall <= MAX_SECONDS and memory.peak <= MAX_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())

"""Helpers shared by the autograder's tests: submissions made from the reference tree."""

from __future__ import annotations

import shutil
from pathlib import Path

from autograder.manifest import GRADABLE_FILES
from autograder.sandbox import Limits

REPO = Path(__file__).resolve().parents[1]
# Hostile submissions only need a few seconds per group; a short budget keeps tests fast.
FAST = Limits(group_timeout_s=12.0, total_s=90.0)
SPEC_KEYS = {"score", "execution_time", "output", "visibility", "tests", "leaderboard"}
TEST_KEYS = {"name", "number", "score", "max_score", "status", "output", "visibility", "case"}


def reference_submission(folder: Path) -> Path:
    """A submission folder holding the reference solution's gradable files."""
    for rel in GRADABLE_FILES:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / rel, folder / rel)
    return folder


def assert_valid_results(data: dict) -> None:
    """The Gradescope keys, types, and the 4 KB cap on each test's output."""
    assert SPEC_KEYS <= set(data), sorted(SPEC_KEYS - set(data))
    assert isinstance(data["score"], float | int) and isinstance(data["tests"], list)
    for test in data["tests"]:
        assert TEST_KEYS <= set(test), sorted(TEST_KEYS - set(test))
        assert len(test["output"].encode()) <= 4096
        assert test["status"] in ("passed", "failed")


def group_score(data: dict, group: str) -> float:
    return sum(t["score"] for t in data["tests"] if t["case"].startswith(f"{group}/"))

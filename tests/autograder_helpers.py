"""Helpers shared by the autograder's tests: submissions made from the reference tree."""

from __future__ import annotations

import shutil
from pathlib import Path

from autograder.parts import assignment
from autograder.sandbox import Limits

REPO = Path(__file__).resolve().parents[1]
# Hostile submissions only need a few seconds per group; a short budget keeps tests fast.
FAST = Limits(group_timeout_s=12.0, total_s=90.0)
# Gradescope's results.json (https://gradescope-autograders.readthedocs.io/en/latest/specs/):
# the keys every file of ours has, and every key the specification allows.
SPEC_KEYS = {"score", "execution_time", "output", "visibility", "tests", "leaderboard"}
SPEC_ALLOWED = SPEC_KEYS | {"output_format", "test_output_format", "test_name_format",
                            "stdout_visibility", "extra_data"}
TEST_KEYS = {"score", "max_score", "status", "name", "number", "output", "tags", "visibility",
             "extra_data"}
TEST_ALLOWED = TEST_KEYS | {"name_format", "output_format"}
VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}


def reference_submission(folder: Path) -> Path:
    """A submission folder holding the reference solution's gradable files."""
    for rel in assignment(REPO)["gradable"]:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / rel, folder / rel)
    return folder


def assert_valid_results(data: dict) -> None:
    """Gradescope's keys and no others (ours live in `extra_data`), their types, and the
    4 KB cap on each test's output."""
    assert SPEC_KEYS <= set(data) <= SPEC_ALLOWED, sorted(set(data) ^ SPEC_KEYS)
    assert isinstance(data["score"], float | int) and isinstance(data["tests"], list)
    assert isinstance(data["output"], str) and data["visibility"] in VISIBILITIES
    assert data.get("stdout_visibility", "hidden") in VISIBILITIES
    assert isinstance(data.get("extra_data", {}), dict)
    assert all(set(entry) <= {"name", "value", "order"} for entry in data["leaderboard"])
    for test in data["tests"]:
        assert TEST_KEYS <= set(test) <= TEST_ALLOWED, sorted(set(test) ^ TEST_KEYS)
        assert isinstance(test["score"], float | int)
        assert isinstance(test["max_score"], float | int)
        assert isinstance(test["name"], str) and isinstance(test["number"], str)
        assert len(test["output"].encode()) <= 4096
        assert test["status"] in ("passed", "failed")
        assert test["visibility"] in VISIBILITIES
        assert isinstance(test["tags"], list) and all(isinstance(t, str) for t in test["tags"])
        assert isinstance(test["extra_data"]["case"], str) and test["extra_data"]["case"]


def group_score(data: dict, group: str) -> float:
    return sum(t["score"] for t in data["tests"] if t["extra_data"]["case"].startswith(f"{group}/"))

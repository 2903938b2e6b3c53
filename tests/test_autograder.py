"""The autograder end to end: reference full marks, handout zero with TODO names, reference
outputs current and reproducible, results.json always valid, demo, check, grade-all."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from autograder_helpers import REPO, assert_valid_results, reference_submission

from autograder import grade as grade_module
from autograder import npzio, sandbox
from autograder.__main__ import main
from autograder.case import all_cases, all_rules
from autograder.fences import fenced_functions
from autograder.grade import Layout, case_feedback, grade, stage_code, stage_trusted
from autograder.judge import Verdict, compare
from autograder.manifest import PARTS
from autograder.reference import build_reference
from autograder.release import release

TODO = re.compile(r"NotImplementedError\(['\"](TODO [^'\"]+)['\"]\)")


@pytest.fixture(scope="session")
def reference_results(tmp_path_factory) -> dict:
    """The reference solution graded once per session (all groups)."""
    folder = reference_submission(tmp_path_factory.mktemp("reference"))
    out = tmp_path_factory.mktemp("reference-json") / "results.json"
    data = grade(folder, json_path=out, predictions=False)
    assert json.loads(out.read_text()) == data
    return data


def test_reference_scores_full_marks(reference_results):
    assert_valid_results(reference_results)
    failed = [(t["name"], t["output"]) for t in reference_results["tests"]
              if t["status"] != "passed"]
    assert failed == []
    assert reference_results["score"] == sum(c.points for c in all_cases())


def test_every_case_has_reference_outputs_and_known_rules():
    cases = all_cases()
    reference = grade_module.load_reference(grade_module.Layout.detect())
    for case in cases:
        assert any(key.startswith(case.name + "/") for key in reference), case.name
        assert set(case.rules) <= set(all_rules())
    assert {c.group for c in cases} >= {"attention", "sdpa", "layer", "embed", "output",
                                        "model", "pretrained", "optimizer"}
    assert sum(c.visible for c in cases) >= 4


def test_every_fenced_function_and_rule_has_a_visible_case():
    """Students see every kind of mistake before the deadline: each fenced function (read
    from the fences) is graded by a visible case, each rule of any case is checked by a
    visible one, and visible points are at least 30% of every part."""
    cases = all_cases()
    visible = [case for case in cases if case.visible]
    graded = {function for case in visible for function in case.grades}
    assert sorted(set(fenced_functions(REPO)) - graded) == []
    shown = {rule for case in visible for rule in case.rules}
    assert sorted({rule for case in cases for rule in case.rules} - shown) == []
    assert {"attn_kv_offset", "attn_padding", "attn_dropout", "layer_dropout", "weight_decay",
            "sentiment_dropout", "lora_dropout"} <= shown
    assert any(not group["correct_bias"] for case in visible if case.producer == "adamw"
               for group in case.params["groups"])
    points: dict[str, list[float]] = {}
    for case in cases:
        total = points.setdefault(case.part, [0.0, 0.0])
        total[0] += case.points * case.visible
        total[1] += case.points
    assert set(points) == {part for part in fenced_functions(REPO).values()}
    for part, (shown_points, total) in points.items():
        assert shown_points >= 0.3 * total, (part, shown_points, total)


def test_failed_feedback_states_each_rule_in_words_without_tags():
    case = next(c for c in all_cases() if c.name == "attention/visible_kv_offset")
    feedback = case_feedback(Verdict(case, 0.0, "out: values differ"))
    assert feedback.startswith("out: values differ\nThis case depends on every one of")
    for rule in case.rules:
        assert f"- {all_rules()[rule]}" in feedback
    assert "checks:" not in feedback and f"[{case.name}]" not in feedback
    assert "attn_" not in feedback
    assert "This case depends" not in case_feedback(Verdict(case, case.points, "ok"))


def test_check_only_refuses_an_unknown_group_and_help_lists_the_groups(capsys):
    groups = list(dict.fromkeys(c.group for c in all_cases() if c.visible))
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "--only", "attentoin"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "invalid choice: 'attentoin'" in error
    assert all(f"'{group}'" in error for group in groups)
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    help_text = capsys.readouterr().out
    assert all(group in help_text for group in groups)
    assert main(["check", "--only", "sdpa"]) == 0
    assert "--- " not in capsys.readouterr().out


@pytest.mark.parametrize("part", [p for p in PARTS if p in fenced_functions(REPO).values()])
def test_check_on_an_untouched_release_names_every_todo(part, tmp_path):
    """In a release of one part (each part with fences), `check` on the untouched handout
    names each of its TODOs."""
    handout = tmp_path / "handout"
    release(REPO, handout, (part,))
    gradable = json.loads((handout / "autograder" / "assignment.json").read_text())["gradable"]
    todos = {todo for rel in gradable for todo in TODO.findall((handout / rel).read_text())}
    result = subprocess.run([sys.executable, "-m", "autograder", "check"], cwd=handout,
                            capture_output=True, text=True, timeout=300)
    assert sorted(todo for todo in todos if todo not in result.stdout) == [], result.stdout[-3000:]
    assert todos and result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]


def test_untouched_handout_scores_zero_with_todo_names(tmp_path):
    handout = tmp_path / "handout"
    release(REPO, handout)
    data = grade(handout, predictions=False,
                 only=["attention", "layer", "optimizer", "lora", "dpo", "smart"])
    assert_valid_results(data)
    assert data["score"] == 0 and data["tests"]
    for test in data["tests"]:
        assert "NotImplementedError: TODO " in test["output"], test


def test_reference_outputs_are_reproducible_and_current(tmp_path):
    """Two builds on one machine are byte-identical.  The checked-in outputs have exactly a
    fresh build's keys, dtypes and shapes, and its values within a quarter of each case's
    tolerance: float kernels differ in the last bits between CPUs (AVX2 against AVX-512),
    so bytes can't be compared across machines, but a correct solution graded on another
    machine must keep three quarters of its tolerance as margin."""
    first, second = build_reference(tmp_path / "a"), build_reference(tmp_path / "b")
    assert all(first[name].read_bytes() == second[name].read_bytes() for name in first)
    cases = {case.name: case for case in all_cases(include_hidden=True)}
    for name, path in first.items():
        fresh = npzio.load(path, name)
        checked_in = npzio.load(REPO / "autograder" / "reference" / name, name)
        stale = f"{name} is stale: run `python -m autograder build-reference` and commit it"
        assert sorted(fresh) == sorted(checked_in), stale
        for key, array in fresh.items():
            case = cases["/".join(key.split("/")[:2])]  # "<group>/<what>/<array>"
            problem = compare(key, checked_in[key], array, case.atol / 4, case.rtol / 4)
            assert problem is None, f"{stale}: {problem}"


def test_judge_feedback_states_diff_index_shapes_but_no_reference_values():
    ref = np.array([[0.123456, 0.654321], [0.5, 0.25]], dtype=np.float32)
    out = ref.copy()
    out[1, 0] = 0.75
    message = compare("out", out, ref, 1e-5, 1e-5)
    assert "max abs diff 0.25" in message and "(1, 0)" in message and "(2, 2)" in message
    assert "0.123" not in message and "0.654" not in message and "0.5 " not in message
    assert "dtype float64" in compare("out", out.astype(np.float64), ref, 1e-5, 0)
    assert "shape (4,)" in compare("out", out.reshape(4), ref, 1e-5, 0)
    out[0, 1] = np.nan
    assert "NaN/inf" in compare("out", out, ref, 1e-5, 0)
    assert compare("out", ref.copy(), ref, 0, 0) is None


def test_npz_reader_refuses_pickles_and_object_arrays(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError):
        npzio.load(path)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError):
        npzio.load(tmp_path / "junk.npz")
    npzio.save(tmp_path / "ok.npz", {"b": np.ones(3, np.float32), "a": np.zeros(2)})
    assert sorted(npzio.load(tmp_path / "ok.npz")) == ["a", "b"]


def test_results_json_written_even_when_the_grader_itself_crashes(tmp_path, monkeypatch):
    def explode(path, wanted):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(grade_module, "read_submission", explode)
    out = tmp_path / "results" / "results.json"
    data = grade(tmp_path, json_path=out)
    assert json.loads(out.read_text()) == data
    assert_valid_results(data)
    assert data["score"] == 0 and "disk on fire" in data["output"]


def test_missing_submission_gives_zero_and_the_reason(tmp_path):
    data = grade(tmp_path / "nope.zip", json_path=tmp_path / "r.json")
    assert data["score"] == 0 and "not found" in data["output"]


def test_grade_all_refuses_a_jobs_count_below_one(tmp_path, capsys):
    from autograder.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(["grade-all", str(tmp_path), "--jobs", "0"])
    assert exit_info.value.code == 2
    assert "argument --jobs: 0 is not an integer >= 1" in capsys.readouterr().err


def test_grade_all_keeps_going_past_a_broken_submission(tmp_path):
    folder = tmp_path / "class"
    reference_submission(folder / "alice")
    release(REPO, folder / "bob")
    (folder / "carol.zip").write_bytes(b"PK\x03\x04 this is no zip")
    csv_path = tmp_path / "gradebook.csv"
    result = subprocess.run(
        [sys.executable, "-m", "autograder", "grade-all", str(folder), "--jobs", "2",
         "--csv", str(csv_path), "--only", "optimizer"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = {row["student"]: row for row in csv.DictReader(csv_path.open())}
    assert set(rows) == {"alice", "bob", "carol"}
    assert float(rows["alice"]["score"]) == float(rows["alice"]["max_score"]) > 0
    assert float(rows["bob"]["score"]) == 0 and rows["bob"]["status"] == "graded"
    assert float(rows["carol"]["score"]) == 0 and "zip" in rows["carol"]["status"]
    assert (tmp_path / "gradebook-results" / "carol.json").is_file()
    merged = tmp_path / "merged.csv"
    subprocess.run([sys.executable, "-m", "autograder", "gradebook",
                    str(tmp_path / "gradebook-results"), "--csv", str(merged)],
                   cwd=REPO, check=True, capture_output=True, timeout=60)
    assert list(csv.DictReader(merged.open())) == list(csv.DictReader(csv_path.open()))


def test_slurm_array_task_grades_one_submission(tmp_path):
    folder = tmp_path / "class"
    reference_submission(folder / "alice")
    (folder / "bob.zip").write_bytes(b"not a zip")
    (folder / "bob.submission_metadata.json").write_text(json.dumps(
        {"created_at": "2027-02-14T10:00:00-08:00", "users": [{"name": "Bob", "sid": "42"}]}))
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "1", "PYTHON": sys.executable}
    subprocess.run(["bash", "autograder/grade_all.sbatch", str(folder), str(tmp_path / "out")],
                   cwd=REPO, env=env, check=True, capture_output=True, timeout=120)
    data = json.loads((tmp_path / "out" / "bob.json").read_text())
    assert_valid_results(data)
    assert data["score"] == 0 and "zip" in data["output"]
    assert data["extra_data"]["users"] == [{"name": "Bob", "sid": "42", "email": ""}]


def test_demo_runs_offline_and_quickly(tmp_path):
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "autograder", "demo", "--json",
                             str(tmp_path / "results.json")],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "[demo] as expected" in result.stdout
    assert "TODO modules/attention.py CausalSelfAttention.attention" in result.stdout
    assert_valid_results(json.loads((tmp_path / "results.json").read_text()))
    assert elapsed < 180


def test_check_in_the_released_handout_uses_visible_cases_only(tmp_path):
    handout = tmp_path / "handout"
    release(REPO, handout)
    assert not (handout / "autograder" / "reference" / "hidden.npz").exists()
    for path in (handout / "autograder" / "cases").glob("*.py"):
        assert "BEGIN STAFF" not in path.read_text() and "MUTANTS" not in path.read_text(), path
    result = subprocess.run([sys.executable, "-m", "autograder", "check"], cwd=handout,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "TODO optimizer.py AdamW.step" in result.stdout
    visible_points = sum(c.points for c in all_cases() if c.visible)
    assert "visible:" in result.stdout and f"total: 0 / {visible_points:g}" in result.stdout
    assert "here your own functions stand in for the grader's trusted ones" in result.stdout


def test_speed_case_is_timed_by_the_grader(tmp_path):
    folder = reference_submission(tmp_path / "slow")
    path = folder / "modules" / "attention.py"
    marker = "        B, H, T_q, d = query.shape\n"
    text = path.read_text()
    assert text.count(marker) >= 1
    path.write_text(text.replace(marker, marker + "        if T_q == 256:\n"
                                 "            __import__('time').sleep(2.5)\n", 1))
    data = grade(folder, only=["attention"], predictions=False)
    failed = [t for t in data["tests"] if t["status"] != "passed"]
    assert len(failed) == 1 and "too slow" in failed[0]["output"], failed
    assert failed[0]["extra_data"]["case"] == "attention/speed"


def test_the_child_waits_for_the_stage_and_a_failed_staging_stops_it():
    """The first child starts before the stage exists (it loads numpy and torch meanwhile)
    and runs nothing until `prepare` has written it; when `prepare` fails, no case runs."""
    layout = Layout.detect()
    cases = [case for case in all_cases() if case.name == "optimizer/visible_adamw"]

    def fail() -> None:
        raise RuntimeError("no stage")

    def slow() -> None:
        time.sleep(1.0)  # the child has long finished importing torch: it must still wait
        stage_code(layout, {}, run_dir)

    for prepare in (fail, slow):
        run_dir = Path(tempfile.mkdtemp(prefix="gpt2-grade-"))  # as grading makes it
        try:
            trusted = stage_trusted(layout, run_dir)
            if prepare is fail:
                with pytest.raises(RuntimeError, match="no stage"):
                    sandbox.run_cases(cases, run_dir, run_dir / "stage", trusted, prepare=fail)
                assert not list((run_dir / "out").glob("*"))
            else:
                runs, _, _ = sandbox.run_cases(cases, run_dir, run_dir / "stage", trusted,
                                               prepare=slow)
                assert runs["optimizer/visible_adamw"].status == "done", runs
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)

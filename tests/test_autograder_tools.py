"""The autograder's tools: prepare_submit.py, prediction-file grading, the Gradescope bundle
in a simulated /autograder, and determinism of scores."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from autograder_helpers import REPO, assert_valid_results, reference_submission

import prepare_submit
from autograder import grade as grade_module
from autograder import isolation
from autograder.bundle import build_bundle
from autograder.case import all_cases
from autograder.environment import distribution_name, import_name, requirements
from autograder.grade import grade
from autograder.manifest import PREDICTION_FILES, SOLUTIONS
from autograder.parts import assignment, write_assignment
from autograder.predictions import grade_predictions
from autograder.release import find_leaks, solution_lines
from autograder.report import table


def write_predictions(folder: Path) -> None:
    """Every prediction file, with a few deliberate problems in sst-test."""
    predictions = folder / "predictions"
    predictions.mkdir(parents=True, exist_ok=True)
    for rel in PREDICTION_FILES:
        (folder / rel).write_text("id,prediction\na,1\n" if rel.endswith(".csv")
                                  else "1\n\nShall I compare thee\n\n")
    (predictions / "sst-test-output.csv").write_text(
        "id,prediction\na,1\nb,2\nc,notanumber\nd,4,extra\ne,1\n")


def write_labels(root: Path) -> Path:
    labels = root / "autograder" / "hidden"
    labels.mkdir(parents=True)
    (labels / "sst-test-labels.csv").write_text("id,label\na,1\nb,2\nc,3\nd,4\ne,1\nf,0\n")
    (labels / "sst-dev-labels.csv").write_text("id,label\na,1\n")
    (labels / "para-test-labels.csv").write_text("id,label\na,1\n")
    (root / "data").mkdir()
    (root / "data" / "TRUE_sonnets_held_out_dev.txt").write_text("1\n\nShall I compare thee\n\n")
    return labels


def test_prepare_submit_packs_exactly_the_graded_files(tmp_path, capsys):
    root = reference_submission(tmp_path / "work")
    out = tmp_path / "submission.zip"
    assert prepare_submit.main(["--root", str(root), "--out", str(out)]) == 1
    assert "is not a copy of the handout" in capsys.readouterr().out
    write_assignment(root, assignment(REPO))
    (root / "notes.txt").write_text("not graded")
    out = tmp_path / "submission.zip"
    assert prepare_submit.main(["--root", str(root), "--out", str(out)]) == 1
    assert "predictions/sst-test-output.csv" in capsys.readouterr().out
    assert prepare_submit.main(["--root", str(root), "--out", str(out), "--code-only"]) == 0
    assert sorted(zipfile.ZipFile(out).namelist()) == sorted(assignment(REPO)["gradable"])
    write_predictions(root)
    (root / "bpe.py").write_text((root / "bpe.py").read_text() + "#" * (300 << 10) + "\n")
    assert prepare_submit.main(["--root", str(root), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "warning: bpe.py" in printed and "packed predictions/generated_sonnets.txt" in printed
    assert sorted(zipfile.ZipFile(out).namelist()) == sorted(assignment(REPO)["gradable"] + list(PREDICTION_FILES))


def test_prepare_submit_packs_the_parts_of_the_handout_it_is_given(tmp_path):
    """--root names the student's handout: its assignment.json (model and optimizer here),
    not that of the folder prepare_submit.py sits in (every part), says what to pack."""
    root = reference_submission(tmp_path / "work")
    chosen = assignment(REPO, ("model", "optimizer"))
    write_assignment(root, chosen)
    out = tmp_path / "submission.zip"
    assert prepare_submit.main(["--root", str(root), "--out", str(out)]) == 0
    assert sorted(zipfile.ZipFile(out).namelist()) == sorted(chosen["gradable"])
    assert "optimizer.py" in chosen["gradable"] and "bpe.py" not in chosen["gradable"]


def test_prediction_files_scored_with_line_numbers_thresholds_and_leaderboard(tmp_path):
    labels = write_labels(tmp_path)
    folder = tmp_path / "submission"
    write_predictions(folder)
    files = {rel: (folder / rel).read_bytes() for rel in PREDICTION_FILES}
    del files["predictions/para-test-output.csv"]
    tests, board = grade_predictions(files, labels)
    by_name = {t.name.split(" ")[1]: t for t in tests}
    sst = by_name["sst-test"]
    assert "accuracy 0.5000" in sst.output  # a, b, e right; c, d malformed; f missing
    assert "predictions/sst-test-output.csv: line 4: prediction 'notanumber'" in sst.output
    assert "line 5: expected 2 fields" in sst.output
    assert "3 of 6 ids have no prediction" in sst.output
    assert sst.score == 4.0 and sst.max_score == 4.0  # thresholds 0.40 -> 2, 0.48 -> 4
    assert by_name["sst-dev"].score == 1.0  # complete and well-formed
    assert "missing file predictions/para-test-output.csv" in by_name["para-test"].output
    assert ("not scored: no labels here (autograder/hidden/cfimdb-test-labels.csv is missing)"
            in by_name["cfimdb-test"].output)
    assert by_name["cfimdb-test"].max_score == 0
    assert by_name["sonnets-dev"].score == 1.0 and "chrF 100.00" in by_name["sonnets-dev"].output
    assert {"name": "SST test accuracy", "value": 0.5} in board


def test_grade_without_labels_lists_prediction_files_as_not_scored(tmp_path, monkeypatch):
    """A grader without autograder/hidden/ (a fresh clone) says why the files earn nothing."""
    missing = tmp_path / "no-labels"
    monkeypatch.setattr(grade_module.Layout, "labels_dir", property(lambda self: missing))
    folder = tmp_path / "submission"
    write_predictions(folder)
    data = grade(folder, only=["predictions"])
    assert_valid_results(data)
    sst = next(t for t in data["tests"] if t["name"].startswith("predictions: sst-test"))
    assert sst["max_score"] == 0 and "not scored: no labels here" in sst["output"]
    assert "  --   predictions: sst-test" in table(data)


def test_grade_reports_predictions_with_the_code(tmp_path, monkeypatch):
    labels = write_labels(tmp_path)
    monkeypatch.setattr(grade_module.Layout, "labels_dir", property(lambda self: labels))
    folder = reference_submission(tmp_path / "submission")
    write_predictions(folder)
    data = grade(folder, only=["optimizer", "predictions"])
    assert_valid_results(data)
    names = [t["name"] for t in data["tests"]]
    assert any(n.startswith("predictions: sst-test") for n in names)
    assert any(n.startswith("optimizer") for n in names)
    assert data["leaderboard"] and data["leaderboard"][0]["name"] == "SST test accuracy"


@pytest.mark.parametrize("parts", [None, ("model", "optimizer")])
def test_bundle_grades_in_a_simulated_gradescope_layout(tmp_path, parts):
    bundle = tmp_path / "autograder.zip"
    names = build_bundle(REPO, bundle, parts)
    assert {"setup.sh", "run_autograder", "autograder/reference/hidden.npz",
            "autograder/cases/model.py", "handout/autograder/cases/model.py",
            "handout/modules/attention.py"} <= set(names)
    assert not any(n.startswith(("models/", "modules/")) or n == "optimizer.py" for n in names)
    assert SOLUTIONS in names and f"handout/{SOLUTIONS}" not in names  # staff module, bundle only
    root = tmp_path / "autograder"
    source = root / "source"
    zipfile.ZipFile(bundle).extractall(source)
    assert requirements(source) == requirements(REPO)  # the bundle installs the handout's pins
    assert find_leaks(solution_lines(REPO, parts), source / "handout") == []
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_SKIP_INSTALL": "1",
           "AUTOGRADER_PYTHON": sys.executable}
    setup = subprocess.run(["bash", str(source / "setup.sh")], env=env, capture_output=True,
                           text=True, timeout=120)
    assert setup.returncode == 0, setup.stderr
    assert "[environment] ok: all" in setup.stdout
    for secret_folder in ("reference", "cases"):
        assert (source / "autograder" / secret_folder).stat().st_mode & 0o777 == 0o700
    assert (source / SOLUTIONS).stat().st_mode & 0o777 == 0o600
    shutil.copy(source / "run_autograder", root / "run_autograder")
    reference_submission(root / "submission")
    run = subprocess.run(["bash", str(root / "run_autograder")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    assert_valid_results(data)
    assert all(isinstance(t["extra_data"].get("case"), str) and t["extra_data"]["case"] for t in data["tests"])
    code_tests = [t for t in data["tests"] if not t["name"].startswith("predictions")]
    assert [t["name"] for t in code_tests if t["status"] != "passed"] == []
    assert [t["extra_data"]["case"] for t in code_tests] == [c.name for c in all_cases(parts=parts)]
    assert (parts is None) == any(t["extra_data"]["case"].startswith("predictions/") for t in data["tests"])
    (root / "results" / "results.json").unlink()
    crashed = subprocess.run(["bash", str(root / "run_autograder")],
                             env={**env, "AUTOGRADER_PYTHON": "/bin/false"}, timeout=60)
    assert crashed.returncode == 0
    assert_valid_results(json.loads((root / "results" / "results.json").read_text()))


@pytest.mark.slow
def test_same_submission_same_score_ten_times_out_of_ten(tmp_path):
    folder = reference_submission(tmp_path / "submission")
    path = folder / "modules" / "attention.py"
    path.write_text(path.read_text().replace("/ math.sqrt(d)  # (B, H, T_q, T_k)", "", 1))
    outcomes = set()
    for _ in range(10):
        data = grade(folder, only=["attention", "optimizer"], predictions=False)
        outcomes.add((data["score"], tuple((t["name"], t["score"]) for t in data["tests"])))
    assert len(outcomes) == 1, outcomes
    score = next(iter(outcomes))[0]
    assert 0 < score < sum(c.points for c in all_cases() if c.group in ("attention", "optimizer"))


def test_grade_speed_benchmark_within_budget():
    result = subprocess.run([sys.executable, str(REPO / "bench" / "grade_speed.py")],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wall time:" in result.stdout and "peak memory:" in result.stdout


def test_unpack_takes_gradable_files_under_one_top_folder_and_lists_the_rest(tmp_path):
    from autograder.unpack import read_submission

    path = tmp_path / "work.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mywork/optimizer.py", "x = 1\n")
        archive.writestr("mywork/predictions/sst-dev-output.csv", "id,prediction\n")
        archive.writestr("mywork/notes.md", "hello")
        archive.writestr("mywork/.venv/lib/site.py", "")
        archive.writestr("mywork/bpe.py", "y = 2\n")
    wanted = ["optimizer.py", "predictions/sst-dev-output.csv"]  # an assignment without bpe.py
    files, notes = read_submission(path, wanted)
    assert files == {"optimizer.py": b"x = 1\n",
                     "predictions/sst-dev-output.csv": b"id,prediction\n"}
    assert "ignored 3 file(s)" in notes[0] and "mywork/notes.md" in notes[0]
    assert "mywork/bpe.py" in notes[0]


def test_one_package_list_for_setup_the_bundle_and_the_probe(monkeypatch):
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = requirements(REPO)
    assert pins == project["dependencies"]
    assert requirements(REPO, dev=True) == pins + project["optional-dependencies"]["dev"]
    assert any(pin.startswith("einops==") for pin in pins)
    assert [import_name(p) for p in ("scikit-learn==1", "pytest-xdist==1", "torch==1")] == [
        "sklearn", "xdist", "torch"]
    assert "-m autograder.environment" in (REPO / "setup.sh").read_text()
    modules, notes = isolation.runtime_modules()
    assert notes == [] and {"einops", "sklearn", "transformers"} <= set(modules)
    monkeypatch.setattr(isolation, "requirements", lambda: pins + ["not-a-real-package==1.0"])
    assert "not-a-real-package==1.0 is not installed" in isolation.runtime_modules()[1][0]
    setup_doc = (REPO / "handout" / "setup.md").read_text()
    assert all(distribution_name(pin) in setup_doc for pin in pins), "handout/setup.md"


def test_as_root_without_a_usable_sandbox_user_grading_stops(monkeypatch):
    """Student code never runs as root: a sandbox user that cannot run Python (a probe that
    times out on a loaded machine, say) stops the run instead of falling back to root."""
    monkeypatch.setattr(isolation.os, "geteuid", lambda: 0)
    monkeypatch.setattr(isolation, "_sandbox_user", lambda name="": (12345, 12345))
    monkeypatch.setattr(isolation, "_user_can_run_python", lambda user, modules: False)
    monkeypatch.setattr(isolation, "_open_path_to_python", lambda: [])
    with pytest.raises(isolation.IsolationError, match="never runs student code as root"):
        isolation.isolation.__wrapped__()
    monkeypatch.setattr(isolation, "_sandbox_user", lambda name="": None)
    with pytest.raises(isolation.IsolationError, match="could not create the user"):
        isolation.isolation.__wrapped__()


def test_kill_user_counts_a_process_dead_only_when_every_thread_is(tmp_path):
    """`kill_user` skips zombies (they run nothing), but not a process whose leader thread
    exited while another thread runs on (its leader shows Z in /proc too)."""
    import platform
    import time

    from autograder.isolation import _zombie

    sys_exit = {"x86_64": 60, "aarch64": 93}[platform.machine()]  # ends the calling thread

    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    leader_gone = subprocess.Popen([sys.executable, "-c", (
        "import ctypes, threading, time\n"
        "threading.Thread(target=time.sleep, args=(60,)).start()\n"
        "time.sleep(0.2)\n"
        f"ctypes.CDLL(None).syscall({sys_exit}, 0)\n")])
    try:
        deadline = time.monotonic() + 30
        while not (_zombie(exited.pid) and Path(f"/proc/{leader_gone.pid}/stat").read_text()
                   .rsplit(")", 1)[1].split()[0] == "Z"):
            assert time.monotonic() < deadline, "the children did not reach their states"
            time.sleep(0.05)
        assert _zombie(exited.pid)
        assert not _zombie(running.pid)
        assert not _zombie(leader_gone.pid)
    finally:
        for process in (running, exited, leader_gone):
            process.kill()
            process.wait()

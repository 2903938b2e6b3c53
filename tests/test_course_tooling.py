"""Course tooling: Gradescope's results.json schema, what shows before the due date, the
late policy from submission_metadata.json, the gradebook's columns, the similarity check,
and the Gradescope bundle with a course file."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from autograder_helpers import REPO, assert_valid_results, reference_submission

from autograder import report
from autograder.__main__ import main
from autograder.batch import grade_all, gradebook_from_results
from autograder.bundle import build_bundle
from autograder.case import all_cases
from autograder.course import load_course
from autograder.grade import grade
from autograder.latepolicy import apply_late_policy, lateness, parse_metadata, read_metadata
from autograder.release import release
from autograder.report import Results, crash_results, csv_row, table, to_json
from autograder.similarity import similarity

DUE = "2027-02-14T23:59:00-08:00"
LATE_DUE = "2027-02-17T23:59:00-08:00"
COURSE = f"""
[course]
name = "Build GPT-2 (test)"
parts = ["optimizer"]

[dates]
due = {DUE}
late_due = {LATE_DUE}

[late_policy]
per_day = 0.1

[visibility]
before_due = "after_due_date"
"""
ADA = {"email": "ada@example.edu", "id": 7, "name": "Ada Lovelace", "sid": "0601"}


def course_file(folder: Path, text: str = COURSE) -> Path:
    path = folder / "course.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def metadata(created: str, due: str | None = DUE, late_due: str | None = LATE_DUE,
             users: list[dict] | None = None) -> dict:
    """A submission_metadata.json as Gradescope writes it (the keys of its documentation)."""
    return {"id": 123456, "created_at": created, "submission_method": "upload",
            "assignment": {"due_date": due, "late_due_date": late_due, "group_size": None,
                           "group_submission": False, "id": 25828, "course_id": 1234,
                           "release_date": "2027-01-30T00:00:00.000000-08:00",
                           "title": "Build GPT-2", "total_points": "20.0"},
            "users": users if users is not None else [ADA],
            "previous_submissions": [{"submission_time": "2027-02-13T10:00:00-08:00",
                                      "score": 4.0, "results": {}}]}


def sample_results() -> Results:
    """A visible case, a hidden one shown after the due date, and one never shown."""
    test = report.TestResult
    return Results([test("attention: visible: causal", "1.1", 2.0, 2.0, "ok", "visible",
                         "attention", "attention/visible_causal"),
                    test("attention: causal, long", "1.2", 0.0, 3.0, "wrong", "after_due_date",
                         "attention", "attention/causal_long"),
                    test("optimizer: hidden", "2.1", 3.0, 3.0, "ok", "hidden", "optimizer",
                         "optimizer/hidden")], 1.5, ["a note"])


def test_results_json_has_gradescopes_keys_and_ours_under_extra_data():
    data = to_json(sample_results())
    assert_valid_results(data)
    assert set(data) == {"score", "execution_time", "output", "visibility", "stdout_visibility",
                         "extra_data", "tests", "leaderboard"}
    assert data["visibility"] == "visible" and data["output"] == "Score 5 / 8.\na note"
    first = data["tests"][0]
    assert set(first) == {"score", "max_score", "status", "name", "number", "output", "tags",
                          "visibility", "extra_data"}
    assert first["extra_data"] == {"case": "attention/visible_causal"}
    assert first["tags"] == ["attention"] and data["extra_data"]["max_score"] == 8.0
    assert_valid_results(crash_results("boom"))
    with pytest.raises(AssertionError):
        assert_valid_results({**data, "case": "x"})
    with pytest.raises(AssertionError):
        assert_valid_results({**data, "tests": [{**first, "case": "attention/visible_causal"}]})


def test_after_due_date_course_shows_neither_total_nor_hidden_cases_before(tmp_path):
    data = to_json(sample_results(), load_course(course_file(tmp_path)))
    assert_valid_results(data)
    assert data["visibility"] == "after_due_date"
    summary = data["output"].splitlines()[0]
    assert summary == ("Visible cases: 2 / 2.  The hidden cases and the total show after the "
                       "due date.")
    assert "5" not in data["output"] and "8" not in data["output"]
    assert [t["visibility"] for t in data["tests"]] == ["visible", "after_due_date", "hidden"]
    assert data["score"] == 5.0  # Gradescope holds it back until the due date


@pytest.mark.parametrize("created, meta, fraction, days", [
    ("2027-02-14T23:00:00-08:00", {}, 0.0, 0),  # on time
    ("2027-02-15T00:30:00-08:00", {}, 0.1, 1),  # 31 minutes late: one started day
    ("2027-02-17T12:00:00-08:00", {}, 0.3, 3),
    ("2027-02-18T00:30:00-08:00", {}, 1.0, 4),  # after the late due date
    ("2027-02-15T00:30:00-08:00", {"due": "2027-02-16T23:59:00-08:00"}, 0.0, 0),  # extension
    ("2027-02-15T08:59:00Z", {"due": None, "late_due": None}, 0.1, 1),  # course dates stand in
])
def test_late_penalty_per_started_day_until_the_late_due_date(tmp_path, created, meta,
                                                              fraction, days):
    course = load_course(course_file(tmp_path))
    late = lateness(course, parse_metadata(metadata(created, **meta), "meta.json"))
    assert (late.fraction, late.days) == pytest.approx((fraction, days))
    assert bool(late.note) == bool(fraction)


def test_late_without_a_late_due_date_scores_zero(tmp_path):
    course = load_course(course_file(tmp_path, COURSE.replace(f"late_due = {LATE_DUE}\n", "")))
    late = lateness(course, parse_metadata(
        metadata("2027-02-15T00:30:00-08:00", late_due=None), "meta.json"))
    assert late.fraction == 1.0 and "accepts no late submissions" in late.note


def test_apply_late_policy_states_the_penalty_and_keeps_the_submitters(tmp_path):
    course = load_course(course_file(tmp_path))
    meta = parse_metadata(metadata("2027-02-16T10:00:00-08:00"), "meta.json")
    data = apply_late_policy(to_json(sample_results()), course, meta)
    assert_valid_results(data)
    assert data["score"] == 4.0
    lines = data["output"].splitlines()
    assert lines[0] == "Score 5 / 8."
    assert lines[1].startswith("Late policy: submitted 2027-02-16T10:00:00-08:00, due "
                               "2027-02-14T23:59:00-08:00: 2 days late; 2 x 0.1 = 20%")
    assert lines[1].endswith("Score 5 -> 4.")
    assert data["extra_data"] == {"max_score": 8.0, "score_before_late_policy": 5.0,
                                  "late_days": 2, "late_penalty": 0.2,
                                  "previous_submissions": 1,
                                  "users": [{"name": "Ada Lovelace", "sid": "0601",
                                             "email": "ada@example.edu"}]}
    assert "20% off for lateness" in table(data)
    no_policy = apply_late_policy(to_json(sample_results()), None, meta)
    assert no_policy["score"] == 5.0 and no_policy["extra_data"]["late_penalty"] == 0.0
    assert no_policy["extra_data"]["users"][0]["name"] == "Ada Lovelace"


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ("[]", "expected a JSON object"),
    ('{"assignment": {}}', "missing key 'created_at'"),
    ('{"created_at": "yesterday"}', "created_at = 'yesterday'"),
    ('{"created_at": "2027-02-15T10:00:00"}', "expected a UTC offset"),
    ('{"created_at": "2027-02-15T10:00:00Z", "assignment": {"due_date": 5}}',
     "assignment.due_date = 5"),
    ('{"created_at": "2027-02-15T10:00:00Z", "users": {"name": "x"}}', "users = "),
])
def test_bad_metadata_names_the_file_and_the_key(tmp_path, content, message):
    path = tmp_path / "submission_metadata.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=str(path)) as error:
        read_metadata(path)
    assert message in str(error.value)


def test_grade_with_unusable_metadata_still_writes_valid_results(tmp_path):
    bad = tmp_path / "meta.json"
    bad.write_text('{"created_at": 3}')
    data = grade(tmp_path, only=["predictions"], metadata=bad, json_path=tmp_path / "r.json")
    assert_valid_results(data)
    assert data["score"] == 0 and f"{bad}: created_at = 3" in data["output"]
    assert json.loads((tmp_path / "r.json").read_text()) == data


def test_gradebook_has_submitters_late_penalty_and_one_column_per_case(tmp_path):
    folder = tmp_path / "class"
    reference_submission(folder / "alice")
    (folder / "alice" / "submission_metadata.json").write_text(
        json.dumps(metadata("2027-02-16T10:00:00-08:00")))
    release(REPO, folder / "bob", ("optimizer",))
    with zipfile.ZipFile(folder / "carol.zip", "w") as archive:
        archive.writestr("optimizer.py", (REPO / "optimizer.py").read_text())
    (folder / "carol.submission_metadata.json").write_text(json.dumps(metadata(
        "2027-02-14T20:00:00-08:00", users=[{"name": "Carol", "email": "c@x.edu", "id": 9}])))
    course = load_course(course_file(tmp_path))
    rows = {row["student"]: row for row in
            grade_all(folder, tmp_path / "gb.csv", jobs=2, only=["optimizer"], course=course)}
    cases = [c.name for c in all_cases(parts=("optimizer",))]
    with open(tmp_path / "gb.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        written = list(reader)
    assert reader.fieldnames == ["student", "name", "sid", "email", "score", "max_score",
                                 "late_penalty", "status", *cases]
    alice, bob, carol = (rows[name] for name in ("alice", "bob", "carol"))
    assert (alice["name"], alice["sid"], alice["email"]) == ("Ada Lovelace", "0601",
                                                             "ada@example.edu")
    assert alice["max_score"] > 0 and alice["late_penalty"] == 0.2, alice["status"]
    assert alice["score"] == pytest.approx(0.8 * alice["max_score"])
    assert all(alice[case] > 0 for case in cases)
    assert (carol["name"], carol["sid"], carol["score"]) == ("Carol", "9", carol["max_score"])
    assert (bob["name"], bob["score"], bob["late_penalty"]) == ("", 0.0, 0.0)
    assert all(bob[case] == 0 for case in cases)
    merged, foreign = gradebook_from_results(tmp_path / "gb-results", tmp_path / "merged.csv")
    assert merged == [rows[name] for name in ("alice", "bob", "carol")] and foreign == []
    assert [row["student"] for row in written] == ["alice", "bob", "carol"]


def test_csv_row_of_a_crashed_grade_has_the_fixed_columns():
    row = csv_row("dan", crash_results("not a zip"))
    assert row == {"student": "dan", "name": "", "sid": "", "email": "", "score": 0.0,
                   "max_score": 0, "late_penalty": 0.0,
                   "status": "The autograder could not grade this submission: not a zip"}


def copied_class(folder: Path) -> Path:
    """Three tiny submissions: alice and bob hand in the same AdamW.step, carol her own."""
    handout = folder / "handout"
    release(REPO, handout, ("optimizer",))
    starter = (handout / "optimizer.py").read_text()
    todo = starter[starter.index("        ### YOUR CODE HERE"):starter.index("        return loss")]
    own = '''        for group in self.param_groups:
            lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
            for param in (q for q in group["params"] if q.grad is not None):
                memory = self.state[param]
                if "step" not in memory:
                    memory.update(step=0, exp_avg=torch.zeros_like(param),
                                  exp_avg_sq=torch.zeros_like(param))
                memory["step"] = memory["step"] + 1
                first = memory["exp_avg"].mul_(b1).add_((1 - b1) * param.grad)
                second = memory["exp_avg_sq"].mul_(b2).add_((1 - b2) * param.grad ** 2)
                scale = lr
                if group["correct_bias"]:
                    scale = lr * (1 - b2 ** memory["step"]) ** 0.5 / (1 - b1 ** memory["step"])
                param.data -= scale * first / (second.sqrt() + eps)
                param.data *= 1 - lr * group["weight_decay"]
'''
    shared = (REPO / "optimizer.py").read_text()
    students = folder / "class"
    for name, text in (("alice", shared), ("bob", shared),
                       ("carol", starter.replace(todo, own))):
        (students / name).mkdir(parents=True)
        (students / name / "optimizer.py").write_text(text)
    shutil.make_archive(str(students / "bob"), "zip", students / "bob")
    shutil.rmtree(students / "bob")
    return students


def test_similarity_lists_the_copied_pair_and_not_the_starter_code(tmp_path, capsys):
    students = copied_class(tmp_path)
    out = tmp_path / "report.html"
    pairs = similarity(students, out, threshold=0.5, parts=("optimizer",))
    assert [(p.first, p.second, p.file) for p in pairs] == [("alice", "bob", "optimizer.py")]
    assert pairs[0].similarity > 0.9
    html = out.read_text()
    assert "alice/optimizer.py" in html and "gpt2-similarity-" not in html
    assert main(["similarity", str(students), "--out", str(out), "--threshold", "0.0",
                 "--parts", "optimizer"]) == 0
    printed = capsys.readouterr().out
    assert "alice ~ bob  (optimizer.py)" in printed
    assert all(p.similarity < 0.5 for p in similarity(students, out, 0.0, ("optimizer",))
               if "carol" in (p.first, p.second))
    with pytest.raises(SystemExit):
        main(["similarity", str(students), "--threshold", "1.5"])
    assert "1.5 is not a number in [0, 1]" in capsys.readouterr().err


def test_bundle_with_a_course_file_applies_late_policy_and_visibility(tmp_path):
    bundle = tmp_path / "autograder.zip"
    names = build_bundle(REPO, bundle, course=course_file(tmp_path))
    assert "course.toml" in names
    root = tmp_path / "autograder"
    source = root / "source"
    zipfile.ZipFile(bundle).extractall(source)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_SKIP_INSTALL": "1",
           "AUTOGRADER_PYTHON": sys.executable}
    setup = subprocess.run(["bash", str(source / "setup.sh")], env=env, capture_output=True,
                           text=True, timeout=120)
    assert setup.returncode == 0, setup.stderr
    assert (source / "course.toml").stat().st_mode & 0o777 == 0o600  # it holds answer keys
    shutil.copy(source / "run_autograder", root / "run_autograder")
    reference_submission(root / "submission")
    results = root / "results" / "results.json"
    run = subprocess.run(["bash", str(root / "run_autograder")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    on_time = json.loads(results.read_text())
    assert_valid_results(on_time)
    assert on_time["visibility"] == "after_due_date"
    assert [t["extra_data"]["case"] for t in on_time["tests"]] == [
        c.name for c in all_cases(parts=("optimizer",))]
    assert on_time["score"] == on_time["extra_data"]["max_score"] > 0
    (root / "submission_metadata.json").write_text(json.dumps(metadata(
        (dt.datetime.fromisoformat(DUE) + dt.timedelta(hours=30)).isoformat())))
    run = subprocess.run(["bash", str(root / "run_autograder")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    late = json.loads(results.read_text())
    assert_valid_results(late)
    assert late["score"] == pytest.approx(0.8 * on_time["score"])
    assert "2 days late; 2 x 0.1 = 20%" in late["output"].splitlines()[1]
    assert late["extra_data"]["users"][0]["sid"] == "0601"


def test_grade_refuses_a_bad_course_file_naming_it(tmp_path, capsys):
    bad = course_file(tmp_path, COURSE.replace("per_day = 0.1", "per_day = 2"))
    assert main(["grade", str(tmp_path), "--course", str(bad)]) == 2
    assert f"{bad}: [late_policy].per_day = 2.0: expected a fraction" in capsys.readouterr().err

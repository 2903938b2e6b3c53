"""Grading follows the assignment: `--course`/`--parts` on every verb, the staff tree and
the Gradescope bundle scoring a submission alike, and the course data in the release."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from autograder_helpers import REPO, reference_submission

import prepare_submit
from autograder.__main__ import main
from autograder.bundle import build_bundle
from autograder.course import example
from autograder.manifest import PARTS
from autograder.parts import assignment, chosen_assignment
from autograder.release import release
from autograder.release_data import data_problems

TWO = ("model", "optimizer")


def course_file(folder: Path, parts: tuple[str, ...]) -> Path:
    """The example course file with `parts`."""
    path = folder / "course.toml"
    path.write_text(example().replace('parts = ["model", "optimizer"]',
                                      f"parts = {json.dumps(list(parts))}"))
    return path


@pytest.fixture(scope="module")
def handout(tmp_path_factory, data_dir) -> Path:
    """The handout of the parts model and optimizer, released with its data by the CLI
    (which also runs the release check)."""
    out = tmp_path_factory.mktemp("course") / "handout"
    assert main(["release", "--out", str(out), "--parts", *TWO, "--data", str(data_dir)]) == 0
    return out


@pytest.fixture(scope="module")
def submissions(handout, tmp_path_factory) -> Path:
    """A class of two: the untouched handout as prepare_submit.py packs it, and the
    reference solution."""
    folder = tmp_path_factory.mktemp("class")
    assert prepare_submit.main(["--root", str(handout), "--out",
                                str(folder / "untouched.zip")]) == 0
    reference_submission(folder / "reference")
    return folder


def staff_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def summary(data: dict) -> tuple[float, float, list[str]]:
    return data["score"], sum(t["max_score"] for t in data["tests"]), [t["name"] for t in
                                                                       data["tests"]]


def test_the_staff_tree_takes_the_flags_parts_or_every_part(tmp_path):
    every, line = chosen_assignment(REPO)
    assert every["parts"] == list(PARTS) and "every part" in line
    two, line = chosen_assignment(REPO, parts=list(TWO))
    assert two == assignment(REPO, TWO) and "--parts" in line
    course = course_file(tmp_path, ("optimizer",))
    one, line = chosen_assignment(REPO, course=course)
    assert one["parts"] == ["optimizer"] and str(course) in line
    with pytest.raises(ValueError, match="not both"):
        chosen_assignment(REPO, course=course, parts=["model"])
    with pytest.raises(ValueError, match="no such course file"):
        chosen_assignment(REPO, course=tmp_path / "missing.toml")


def test_a_released_tree_grades_its_own_parts_and_refuses_others(handout, tmp_path):
    own, line = chosen_assignment(handout)
    assert own["parts"] == list(TWO) and "assignment.json" in line
    assert chosen_assignment(handout, course=course_file(tmp_path, TWO))[0] == own
    with pytest.raises(ValueError, match=r"\['optimizer'\].*released for \['model', "
                                         r"'optimizer'\]"):
        chosen_assignment(handout, parts=["optimizer"])
    refused = subprocess.run([sys.executable, "prepare_submit.py", "--parts", "optimizer",
                              "--out", str(tmp_path / "s.zip")], cwd=handout,
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(handout)})
    assert refused.returncode == 1 and "released for" in refused.stdout


def test_init_course_writes_the_example_and_never_overwrites(tmp_path, capsys):
    path = tmp_path / "course.toml"
    assert main(["init-course", "--out", str(path)]) == 0
    assert path.read_text() == example()
    assert main(["init-course", "--out", str(path)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_every_verb_takes_course_and_parts():
    for verb in ("release", "build", "demo", "check", "grade", "grade-all", "gradebook"):
        result = staff_cli(verb, "--help")
        assert "--course FILE" in result.stdout and "--parts" in result.stdout, verb
    result = subprocess.run([sys.executable, "prepare_submit.py", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert "--course FILE" in result.stdout and "--parts" in result.stdout


def test_gradebook_names_the_assignment_first_and_flags_other_parts(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    (results / "ada.json").write_text(json.dumps({
        "score": 1, "output": "", "tests": [{"name": "t", "score": 1, "max_score": 1,
                                             "extra_data": {"case": "sdpa/not-a-case"}}]}))
    assert main(["gradebook", str(results), "--csv", str(tmp_path / "gb.csv"),
                 "--parts", *TWO]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "assignment: parts ['model', 'optimizer'] (the parts of --parts)"
    assert "ada.json: cases outside parts" in err and "sdpa/not-a-case" in err
    assert main(["gradebook", str(results), "--csv", str(tmp_path / "gb.csv")]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("assignment: every part")


def test_staff_tree_and_bundle_score_the_same(handout, submissions, tmp_path):
    """grade-all and grade in the staff tree with the release's --parts, and the bundle's
    run_autograder: the untouched handout 0, the reference the two parts' total, the same
    score, maximum and test names everywhere."""
    book = tmp_path / "gb.csv"
    batch = staff_cli("grade-all", str(submissions), "--parts", *TWO, "--csv", str(book),
                      "--results", str(tmp_path / "results"))
    assert batch.returncode == 0, batch.stderr
    assert batch.stdout.splitlines()[0] == ("assignment: parts ['model', 'optimizer'] "
                                            "(the parts of --parts)")
    rows = {row["student"]: row for row in csv.DictReader(book.open())}
    staff = {name: json.loads((tmp_path / "results" / f"{name}.json").read_text())
             for name in ("untouched", "reference")}
    single = staff_cli("grade", str(submissions / "reference"), "--parts", *TWO, "--json",
                       str(tmp_path / "r.json"))
    assert single.returncode == 0, single.stderr
    assert summary(json.loads((tmp_path / "r.json").read_text())) == summary(staff["reference"])

    bundle = tmp_path / "autograder.zip"
    build_bundle(REPO, bundle, TWO)
    root = tmp_path / "autograder"
    zipfile.ZipFile(bundle).extractall(root / "source")
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_SKIP_INSTALL": "1",
           "AUTOGRADER_PYTHON": sys.executable}
    setup = subprocess.run(["bash", str(root / "source" / "setup.sh")], env=env,
                           capture_output=True, text=True, timeout=300)
    assert setup.returncode == 0, setup.stderr
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    for name, entry in (("untouched", submissions / "untouched.zip"),
                        ("reference", submissions / "reference")):
        shutil.rmtree(root / "submission", ignore_errors=True)
        if entry.is_dir():
            shutil.copytree(entry, root / "submission")
        else:
            zipfile.ZipFile(entry).extractall(root / "submission")
        run = subprocess.run(["bash", str(root / "run_autograder")], env=env,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
        gradescope = json.loads((root / "results" / "results.json").read_text())
        assert summary(gradescope) == summary(staff[name]), name
        assert float(rows[name]["score"]) == gradescope["score"]
    score, maximum, names = summary(staff["untouched"])
    assert score == 0 and maximum > 0 and names
    assert summary(staff["reference"])[:2] == (maximum, maximum)


def test_the_release_holds_the_student_data_and_the_scripts_find_it(handout):
    data = handout / "data"
    for rel in ("ids-sst-train.csv", "ids-sst-test-student.csv", "quora-test-student.csv",
                "sonnets.txt", "sonnets_held_out.txt", "TRUE_sonnets_held_out_dev.txt",
                "gpt2-tokenizer/vocab.json", "gpt2-tokenizer/merges.txt",
                "tinyshakespeare/input.txt"):
        assert (data / rel).is_file(), rel
    assert not any(p.name.endswith("-labels.csv") for p in data.rglob("*"))
    env = {k: v for k, v in os.environ.items() if k != "BUILD_GPT2_DATA"}
    script = ("from training.paths import course_data, TINY_SHAKESPEARE, GPT2_TOKENIZER\n"
              "from training.args import DATA_DIR\n"
              "print(course_data(TINY_SHAKESPEARE)); print(course_data(GPT2_TOKENIZER)); "
              "print(DATA_DIR)")
    found = subprocess.run([sys.executable, "-c", script], cwd=handout, capture_output=True,
                           text=True, timeout=120, env={**env, "PYTHONPATH": str(handout)})
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == [str(data / "tinyshakespeare" / "input.txt"),
                                    str(data / "gpt2-tokenizer"), str(data)]
    prepared = subprocess.run([sys.executable, "data/prepare_lm.py", "--tokenizer", "bytes",
                               "--out_dir", "data/shakespeare_char"], cwd=handout,
                              capture_output=True, text=True, timeout=300,
                              env={**env, "PYTHONPATH": str(handout)})
    assert prepared.returncode == 0, prepared.stderr
    meta = json.loads((data / "shakespeare_char" / "meta.json").read_text())
    assert meta["source"]["input"] == str(data / "tinyshakespeare" / "input.txt")
    assert meta["train_tokens"] > 0
    shutil.rmtree(data / "shakespeare_char")


def test_the_staff_tree_finds_the_shared_data(data_dir):
    from training.paths import TINY_SHAKESPEARE, course_data

    assert course_data(TINY_SHAKESPEARE).read_bytes() == (data_dir / TINY_SHAKESPEARE).read_bytes()


def test_the_release_check_refuses_hidden_labels_and_held_out_text(handout, data_dir,
                                                                   tmp_path):
    assert data_problems(REPO, handout) == []
    leaky = tmp_path / "leaky"
    shutil.copytree(handout / "data", leaky / "data",
                    ignore=shutil.ignore_patterns("*.py", "gpt2-tokenizer", "tinyshakespeare"))
    shutil.copy(data_dir / "cs224n" / "sonnets.txt", leaky / "data" / "all_sonnets.txt")
    shutil.copy(data_dir / "cs224n" / "ids-sst-train.csv", leaky / "data" / "sst-raw.csv")
    (leaky / "data" / "para-test-labels.csv").write_text("id,label\n")
    test_file = leaky / "data" / "ids-cfimdb-test-student.csv"
    test_file.write_text(test_file.read_text().replace("id\tsentence", "id\tsentence\tsentiment",
                                                       1))
    problems = "\n".join(data_problems(REPO, leaky))
    assert "data/all_sonnets.txt:" in problems and "held-out test sonnet" in problems
    assert "data/sst-raw.csv: labels of" in problems
    assert "data/para-test-labels.csv: named like a hidden label file" in problems
    assert "data/ids-cfimdb-test-student.csv: a test file with label column" in problems


def test_release_refuses_a_data_folder_without_the_course_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.*cs224n"):
        release(REPO, tmp_path / "handout", TWO, data=tmp_path)


def test_check_in_the_staff_tree_grades_the_flags_parts(tmp_path):
    result = staff_cli("check", "--course", str(course_file(tmp_path, ("optimizer",))))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    first, *rest = result.stdout.splitlines()
    assert first == f"assignment: parts ['optimizer'] (the parts of {tmp_path / 'course.toml'})"
    assert "optimizer" in "\n".join(rest) and "attention" not in "\n".join(rest)

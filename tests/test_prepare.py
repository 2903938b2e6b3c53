"""data/prepare.py on the real course files: splits, hidden labels, bad rows, CRLF."""

import os
import shutil
import subprocess
import sys

import pytest

import evaluation
from data.loaders import read_paraphrase, read_sentiment
from training.loading import load_tokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("BUILD_GPT2_DATA", os.path.join(REPO, "..", "shared", "data"))
CS224N, TOKENIZER = os.path.join(DATA, "cs224n"), os.path.join(DATA, "gpt2-tokenizer")
pytestmark = pytest.mark.skipif(not os.path.isdir(CS224N),
                                reason=f"course data not found at {CS224N} (set BUILD_GPT2_DATA)")


def prepare(source, out, hidden=None):
    command = [sys.executable, os.path.join(REPO, "data", "prepare.py"), "--from", str(source),
               "--tokenizer", TOKENIZER, "--out", str(out)]
    if hidden:
        command += ["--staff", "--hidden_dir", str(hidden)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_staff_splits_and_hidden_labels(tmp_path):
    result = prepare(CS224N, tmp_path / "data", tmp_path / "hidden")
    assert result.returncode == 0, result.stderr
    assert "quora-dev.csv:2577: empty label" in result.stderr
    assert "2 malformed row(s) skipped" in result.stderr
    out = tmp_path / "data"
    for task, stem, sizes in [("sst", "ids-sst", (7443, 1101, 1101)),
                              ("cfimdb", "ids-cfimdb", (1462, 245, 245)),
                              ("para", "quora", (16212, 2000, 2000))]:
        read = read_paraphrase if task == "para" else (
            lambda path, labelled: read_sentiment(path, 5, labelled))
        train = read(str(out / f"{stem}-train.csv"), labelled=True)
        dev = read(str(out / f"{stem}-dev.csv"), labelled=True)
        test = read(str(out / f"{stem}-test-student.csv"), labelled=None)
        assert (len(train), len(dev), len(test)) == sizes
        assert all(e.label is None for e in test)
        ids = [{e.id for e in split} for split in (train, dev, test)]
        assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
        labels, errors = evaluation.read_predictions(tmp_path / "hidden" / f"{task}-test-labels.csv",
                                                     column="label")
        assert errors == [] and set(labels) == ids[2]
        dev_labels, _ = evaluation.read_predictions(
            tmp_path / "hidden" / f"{task}-dev-labels.csv", column="label")
        assert dev_labels == {e.id: e.label for e in dev}
    for name in ("sonnets.txt", "sonnets_held_out.txt"):
        assert b"\r" not in (out / name).read_bytes()
    train_sonnets = evaluation.read_sonnets(out / "sonnets.txt")
    prompts = evaluation.read_sonnets(out / "sonnets_held_out.txt")
    true = evaluation.read_sonnets(tmp_path / "hidden" / "sonnets-test-true.txt")
    assert (len(train_sonnets), len(prompts)) == (119, 12)
    assert [n for n, _ in prompts] == [n for n, _ in true]
    assert not {n for n, _ in train_sonnets} & {n for n, _ in true}
    for (_, prompt), (_, text) in zip(prompts, true, strict=True):
        assert prompt.split("\n") == text.split("\n")[:3]
    assert (out / "gpt2-tokenizer" / "vocab.json").is_file()
    assert load_tokenizer(str(out / "gpt2-tokenizer")).encode(" yes") == [3763]

    again = prepare(CS224N, tmp_path / "again")  # no --staff: same files, no hidden labels
    assert again.returncode == 0, again.stderr
    for name in os.listdir(out):
        if name.endswith((".csv", ".txt")):
            assert (out / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


def test_bad_rows_are_reported_not_fatal(tmp_path):
    source = tmp_path / "cs224n"
    shutil.copytree(CS224N, source)
    train = source / "ids-sst-train.csv"
    train.chmod(0o644)
    with open(train, "a", encoding="utf-8") as f:
        f.write("9001\tbad1\tA fine film .\t7\n"       # label out of range
                "9002\t\tNo id here .\t3\n"              # empty id
                "9003\tbad3\tToo many\t2\textra\n"       # extra field
                "9004\tbad4\tWords\tgreat\n")            # label not a number
    lines = len(train.read_text(encoding="utf-8").splitlines())
    result = prepare(source, tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert f"ids-sst-train.csv:{lines - 3}: label '7' is not an integer in 0..4" in result.stderr
    assert f"ids-sst-train.csv:{lines - 2}: empty id" in result.stderr
    assert f"ids-sst-train.csv:{lines - 1}: 1 extra field(s)" in result.stderr
    assert f"ids-sst-train.csv:{lines}: label is not a number" in result.stderr
    assert "ids-sst-train.csv: 4 malformed row(s) skipped" in result.stderr
    assert "6 malformed row(s) skipped in total" in result.stdout


def test_missing_source_says_what_to_pass(tmp_path):
    result = prepare(tmp_path / "nowhere", tmp_path / "data")
    assert result.returncode != 0
    assert "--from ../shared/data/cs224n" in result.stderr


def test_sonnet_points_need_more_than_the_given_lines(tmp_path):
    """On the real graded split: echoing the three given lines earns no sonnet points, while
    Shakespeare's own style (the given lines, then the rest of another real sonnet) earns
    all of them."""
    from autograder.predictions import TASKS, grade_task

    assert prepare(CS224N, tmp_path / "data", tmp_path / "hidden").returncode == 0
    task = next(t for t in TASKS if t.name == "sonnets-test")
    prompts = evaluation.read_sonnets(tmp_path / "data" / "sonnets_held_out.txt")
    others = [text for _, text in evaluation.read_sonnets(tmp_path / "data" / "sonnets.txt")]

    def graded(sonnets):
        path = tmp_path / "generated_sonnets.txt"
        evaluation.write_sonnets(path, sonnets)
        return grade_task(task, {task.file: path.read_bytes()}, tmp_path / "hidden", "1")[0]

    echoed = graded(prompts)
    assert echoed.score == 0, echoed.output
    styled = graded([(number, prompt + "\n" + "\n".join(other.split("\n")[3:]))
                     for (number, prompt), other in zip(prompts, others, strict=False)])
    assert styled.score == task.points, styled.output

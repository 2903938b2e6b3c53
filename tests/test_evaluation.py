"""evaluation.py: the prediction/sonnet file format and the metrics (scikit-learn, sacrebleu)."""

import os

import pytest
import sacrebleu
from sklearn.metrics import f1_score

import evaluation

DATA = os.environ.get(
    "BUILD_GPT2_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
CS224N = os.path.join(DATA, "cs224n")
needs_data = pytest.mark.skipif(not os.path.isdir(CS224N),
                                reason=f"course data not found at {CS224N} (set BUILD_GPT2_DATA)")


def test_predictions_round_trip(tmp_path):
    path = tmp_path / "sub" / "sst-dev-output.csv"
    evaluation.write_predictions(path, ["a1", "b2", "c3"], [4, 0, 2])
    assert path.read_text(encoding="utf-8") == "id,prediction\na1,4\nb2,0\nc3,2\n"
    assert evaluation.read_predictions(path) == ({"a1": 4, "b2": 0, "c3": 2}, [])


def test_labels_use_the_same_layout(tmp_path):
    path = tmp_path / "para-test-labels.csv"
    evaluation.write_predictions(path, ["x"], [1], column="label")
    assert path.read_text() == "id,label\nx,1\n"
    assert evaluation.read_predictions(path, column="label") == ({"x": 1}, [])


def test_malformed_lines_are_reported_with_line_numbers_not_raised(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"id,prediction\r\na,1\r\nb,yes\r\n,3\r\na,2\r\nc,1,2\r\n\r\nd, 4\r\ne,\xff\r\n")
    predictions, errors = evaluation.read_predictions(path)
    assert predictions == {"a": 1, "d": 4}
    text = "\n".join(errors)
    for expected in ["not valid UTF-8", "line 3:", "line 4: empty id", "line 5: repeated id",
                     "line 6: expected 2 fields", "line 9:"]:
        assert expected in text


def test_wrong_header_and_missing_file(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("id,label\na,1\n")
    predictions, errors = evaluation.read_predictions(path)
    assert predictions == {"a": 1} and "line 1: header" in errors[0]
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        evaluation.read_predictions(tmp_path / "nope.csv")


def test_write_rejects_bad_ids_and_lengths(tmp_path):
    with pytest.raises(ValueError, match="unusable id"):
        evaluation.write_predictions(tmp_path / "p.csv", ["a,b"], [1])
    with pytest.raises(ValueError, match="2 ids but 1 labels"):
        evaluation.write_predictions(tmp_path / "p.csv", ["a", "b"], [1])


def test_sonnets_round_trip(tmp_path):
    sonnets = [(7, "First line,\nsecond line;\n  indented couplet."), (8, "Only one line")]
    path = tmp_path / "generated_sonnets.txt"
    evaluation.write_sonnets(path, sonnets)
    assert path.read_text().startswith("7\n\nFirst line,\n")
    assert evaluation.read_sonnets(path) == sonnets


@needs_data
def test_read_course_sonnet_files():
    true = evaluation.read_sonnets(os.path.join(CS224N, "TRUE_sonnets_held_out_dev.txt"))
    assert len(true) == 12 and true[0][0] == 132
    assert all(len(text.split("\n")) == 14 for _, text in true)
    held_out = evaluation.read_sonnets(os.path.join(CS224N, "sonnets_held_out.txt"))  # CRLF
    assert [n for n, _ in held_out] == list(range(145, 157))
    assert all(len(text.split("\n")) == 3 and "\r" not in text for _, text in held_out)
    assert len(evaluation.read_sonnets(os.path.join(CS224N, "sonnets.txt"))) == 131


def test_metrics_match_the_libraries():
    hyp = ["The quick brown fox jumps over the lazy dog", "Shall I compare thee"]
    ref = ["The quick brown fox jumped over a lazy dog", "Shall I compare thee to a summer's day"]
    expected = sacrebleu.metrics.CHRF().corpus_score(hyp, [ref]).score
    assert evaluation.chrf(hyp, ref) == pytest.approx(expected, abs=1e-12)
    assert evaluation.chrf(["abc"], ["abc"]) == pytest.approx(100.0, abs=1e-12)
    acc, f1 = evaluation.accuracy_f1([0, 1, 2, 2], [0, 1, 1, 2])
    assert acc == 0.75
    assert f1 == pytest.approx(f1_score([0, 1, 2, 2], [0, 1, 1, 2], average="macro"), abs=1e-12)


def test_sonnet_chrf_matches_by_number():
    true = [(1, "a b c"), (2, "d e f")]
    score, errors = evaluation.sonnet_chrf([(2, "d e f"), (1, "a b c"), (9, "x")], true)
    assert score == pytest.approx(100.0, abs=1e-12) and errors == ["sonnet 9: not a held-out sonnet, ignored"]
    score, errors = evaluation.sonnet_chrf([(1, "a b c")], true)
    assert score < 100 and errors == ["sonnet 2: missing from the generated sonnets"]

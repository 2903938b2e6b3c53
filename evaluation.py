"""Prediction files and metrics for Part 2: the one home of the submission format.

Classification predictions (SST, CFIMDB, Quora) live in ``predictions/`` as UTF-8 CSV::

    id,prediction
    a7d575c9ed86ea9633660c67e,3
    33cfa32975091f471e3a19656,2

one row per example, the label an integer (SST 0..4, CFIMDB 0/1, Quora 0/1 with
1 = paraphrase).  Hidden test labels use the same layout with the header ``id,label``.

Sonnets use the layout of the course sonnet files: the sonnet number alone on a line,
a blank line, the sonnet's lines, a blank line.  Any text before the first number
(the Folger header of the course files) is ignored by the reader.

The autograder's judge imports ``read_predictions`` and ``read_sonnets`` to read
untrusted submissions, so both report problems as messages naming the line instead of
raising.  Metrics come from scikit-learn and sacrebleu, never hand-written.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Sequence

import sacrebleu

PREDICTION_COLUMN = "prediction"
MAX_REPORTED_ERRORS = 50  # read_predictions stops listing problems after this many

_INT = re.compile(r"^-?\d+$")
_SONNET_NUMBER = re.compile(r"^\s*(\d+)\s*$")


def write_predictions(
    path: str | os.PathLike, ids: Sequence[str], labels: Iterable[int],
    column: str = PREDICTION_COLUMN,
) -> None:
    """Write ``id,<column>`` then one ``<id>,<int label>`` row per example.

    Args:
        path: output CSV; its folder is created.
        ids: example ids, in any order; each must be non-empty without commas or newlines.
        labels: integer labels (ints, numpy or 0-d torch integers), same length as ids.
        column: ``"prediction"`` for submissions, ``"label"`` for hidden labels.
    """
    labels = [int(label) for label in labels]
    if len(ids) != len(labels):
        raise ValueError(f"write_predictions({path}): {len(ids)} ids but {len(labels)} labels")
    for example_id in ids:
        if not example_id or any(c in example_id for c in ",\r\n\""):
            raise ValueError(f"write_predictions({path}): unusable id {example_id!r}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(f"id,{column}\n")
        for example_id, label in zip(ids, labels, strict=True):
            f.write(f"{example_id},{label}\n")


def _read_text(path: str | os.PathLike, what: str) -> tuple[str, list[str]]:
    """Read a whole file as UTF-8 (BOM and CRLF tolerated); undecodable bytes become U+FFFD
    and are reported, never raised."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} file not found: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    errors = []
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        errors.append(f"{path}: not valid UTF-8 (byte {e.start}); undecodable bytes replaced")
        text = raw.decode("utf-8-sig", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n"), errors


def read_predictions(
    path: str | os.PathLike, column: str = PREDICTION_COLUMN,
) -> tuple[dict[str, int], list[str]]:
    """Read a prediction (or hidden label) CSV written by ``write_predictions``.

    Returns ``(predictions, errors)``: ``predictions`` maps id -> int label for every
    well-formed row; ``errors`` lists one message per problem, naming the line number
    (1-based, the header is line 1): a wrong header, a row without exactly two fields,
    an empty or multi-line id, a label that is not an integer, a repeated id (the first one is kept).
    Blank lines are ignored.  Never raises on content; raises ``FileNotFoundError``
    with the path when the file does not exist.
    """
    text, errors = _read_text(path, "predictions")
    predictions: dict[str, int] = {}
    lines = text.split("\n")
    if not lines or lines[0].strip().replace(" ", "") != f"id,{column}":
        errors.append(f"{path}: line 1: header must be 'id,{column}', got {lines[0][:80]!r}")
    rows = csv.reader(io.StringIO("\n".join(lines[1:])))
    n_problems = 0
    for row in rows:
        line_no = rows.line_num + 1
        problem = None
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != 2:
            problem = f"expected 2 fields 'id,{column}', got {len(row)}"
        elif not row[0].strip():
            problem = "empty id"
        elif "\n" in row[0]:
            problem = "id spans several lines"
        elif not _INT.match(row[1].strip()):
            problem = f"{column} {row[1][:40]!r} is not an integer"
        elif row[0].strip() in predictions:
            problem = f"repeated id {row[0].strip()!r} (first one kept)"
        if problem is None:
            predictions[row[0].strip()] = int(row[1].strip())
            continue
        n_problems += 1
        if n_problems <= MAX_REPORTED_ERRORS:
            errors.append(f"{path}: line {line_no}: {problem}")
    if n_problems > MAX_REPORTED_ERRORS:
        errors.append(f"{path}: ... {n_problems - MAX_REPORTED_ERRORS} more malformed lines")
    return predictions, errors


def read_sonnets(path: str | os.PathLike) -> list[tuple[int, str]]:
    """Read sonnets in the course layout into ``[(number, text), ...]`` in file order.

    A sonnet starts at a line holding only its number (at the start of the file or after a
    blank line); its text is every following line up to the next number line, with
    trailing spaces and surrounding blank lines removed (indentation kept).  Text before
    the first number is a header and ignored.  CRLF and a BOM are accepted; undecodable
    bytes are replaced, never raised.  Raises ``FileNotFoundError`` when missing.
    """
    text, _ = _read_text(path, "sonnets")
    sonnets: list[tuple[int, list[str]]] = []
    previous_blank = True
    for line in text.split("\n"):
        line = line.rstrip()
        number = _SONNET_NUMBER.match(line)
        if number and previous_blank:
            sonnets.append((int(number.group(1)), []))
        elif sonnets:
            sonnets[-1][1].append(line)
        previous_blank = not line.strip()
    return [(number, "\n".join(lines).strip("\n")) for number, lines in sonnets]


def write_sonnets(path: str | os.PathLike, sonnets: Iterable[tuple[int, str]]) -> None:
    """Write ``[(number, text), ...]`` in the course layout (number, blank, lines, blank).

    Blank lines inside a text are dropped so that the file reads back identically with
    ``read_sonnets``.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for number, text in sonnets:
            lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
            body = "\n".join(line for line in lines if line.strip())
            f.write(f"{int(number)}\n\n{body}\n\n")


def accuracy_f1(y_true: Sequence[int], y_pred: Sequence[int]) -> tuple[float, float]:
    """Accuracy and macro-averaged F1 (scikit-learn), both in [0, 1]."""
    from sklearn.metrics import accuracy_score, f1_score  # 2 s to import: only when scoring

    return (float(accuracy_score(y_true, y_pred)),
            float(f1_score(y_true, y_pred, average="macro", zero_division=0)))


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF (sacrebleu's defaults: character 6-grams, beta 2), on a 0..100 scale.

    ``hypotheses[i]`` is scored against ``references[i]``; the lists must be equally long.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"chrf: {len(hypotheses)} hypotheses but {len(references)} references")
    return float(sacrebleu.corpus_chrf(list(hypotheses), [list(references)]).score)


def sonnet_chrf(
    generated: Sequence[tuple[int, str]], true: Sequence[tuple[int, str]],
) -> tuple[float, list[str]]:
    """chrF of generated sonnets against the true ones, matched by sonnet number.

    Returns ``(score, errors)``; a true sonnet with no generated counterpart is scored
    against the empty string and reported in ``errors``, as is an extra generated number.
    """
    produced = dict(generated)
    errors = [f"sonnet {n}: missing from the generated sonnets" for n, _ in true
              if n not in produced]
    wanted = {n for n, _ in true}
    errors += [f"sonnet {n}: not a held-out sonnet, ignored" for n in produced if n not in wanted]
    score = chrf([produced.get(n, "") for n, _ in true], [text for _, text in true])
    return score, errors

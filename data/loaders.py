"""The course data: its rows, readers and writers, the SST/CFIMDB task table and the
Quora cloze prompt.

Data files (written by ``data/prepare.py`` into ``data/``; the raw course files read too):

- sentiment (SST 0..4, CFIMDB 0/1): tab-separated with columns ``id``, ``sentence`` and,
  when labelled, ``sentiment``;
- paraphrase (Quora): ``id``, ``sentence1``, ``sentence2`` and, when labelled,
  ``is_duplicate`` (``1``/``0``; the course file writes ``1.0``/``0.0``).

Other columns (the course files' unnamed index) are ignored.  Every row is validated; a
malformed row is reported on stderr as ``file:line: reason``, followed by a count, and
skipped, never fatal.
"""

from __future__ import annotations

import csv
import math
import os
import sys
from dataclasses import dataclass

PREPARE_HINT = ("run `python data/prepare.py --from ../shared/data/cs224n "
                "--tokenizer ../shared/data/gpt2-tokenizer` first, or pass --data_dir")

# The sentiment tasks: task -> (file stem, number of classes).
SENTIMENT_TASKS = {"sst": ("ids-sst", 5), "cfimdb": ("ids-cfimdb", 2)}

# A Quora pair as one prompt that ends where the answer goes (paraphrase_detection.py's
# cloze, and the prompt of dpo.py's Quora pairs); the answers are class 0, class 1.
PARAPHRASE_PROMPT = ('Question 1: "{}"\nQuestion 2: "{}"\n'
                     "Are these questions asking the same thing? Answer:")
PARAPHRASE_ANSWERS = (" no", " yes")


@dataclass(frozen=True)
class SentimentExample:
    id: str
    sentence: str
    label: int | None  # None for unlabelled (test) rows


@dataclass(frozen=True)
class ParaphraseExample:
    id: str
    sentence1: str
    sentence2: str
    label: int | None  # 1 = paraphrase, 0 = not; None for unlabelled (test) rows


def require_file(path: str) -> str:
    """Return ``path`` or exit with a message saying how to make it."""
    if not os.path.isfile(path):
        raise SystemExit(f"data file not found: {path}\n{PREPARE_HINT}")
    return path


def require_examples(path: str, examples: list) -> list:
    """Return ``examples``, or exit naming ``path`` when it holds no usable row."""
    if not examples:
        raise SystemExit(f"{path}: no usable example (malformed rows, if any, are reported "
                         f"above)\n{PREPARE_HINT}")
    return examples


def _parse_label(value: str | None, num_labels: int) -> int:
    """'3' or '1.0' -> int in [0, num_labels); raises ValueError with the reason."""
    if value is None or not value.strip():
        raise ValueError("empty label")
    number = float(value)  # ValueError for text
    if not math.isfinite(number) or number != int(number) or not 0 <= number < num_labels:
        raise ValueError(f"label {value!r} is not an integer in 0..{num_labels - 1}")
    return int(number)


def _read_rows(path: str, text_columns: tuple[str, ...], label_column: str, num_labels: int,
               labelled: bool | None) -> tuple[list[tuple[str, tuple[str, ...], int | None]],
                                               list[str]]:
    """Validated rows of a tab-separated file: [(id, texts, label or None)], problems.

    ``labelled=None`` means "labelled if the header has the label column".  A row is
    malformed when it has missing or extra fields, an empty or repeated id, an empty text,
    or (labelled files) a label that is not an integer in range.
    """
    rows, problems, seen = [], [], set()
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        header = reader.fieldnames or []
        missing = [c for c in ("id", *text_columns) if c not in header]
        if labelled is None:
            labelled = label_column in header
        elif labelled and label_column not in header:
            missing.append(label_column)
        if missing:
            raise ValueError(f"{path}:1: header {header} lacks the column(s) {missing}")
        end = reader.line_num
        for record in reader:
            start, end = end + 1, reader.line_num
            where = f"{path}:{start}" if start == end else f"{path}:{start}-{end}"
            fields = ("id", *text_columns) + ((label_column,) if labelled else ())
            values = [record.get(c) for c in fields]
            problem = None
            if None in record:
                problem = f"{len(record[None])} extra field(s)"
            elif any(v is None for v in values):
                problem = "missing field(s)"
            elif not values[0].strip():
                problem = "empty id"
            elif values[0].strip() in seen:
                problem = f"repeated id {values[0].strip()!r}"
            label = None
            if problem is None and labelled:
                try:
                    label = _parse_label(values[-1], num_labels)
                except ValueError as error:
                    problem = str(error).replace("could not convert string to float: ",
                                                 "label is not a number: ")
            if problem is None and not all(v.strip() for v in values[1:1 + len(text_columns)]):
                problem = "empty text"
            if problem:
                problems.append(f"{where}: {problem}")
                continue
            seen.add(values[0].strip())
            texts = tuple(" ".join(v.split()) for v in values[1:1 + len(text_columns)])
            rows.append((values[0].strip(), texts, label))
    return rows, problems


def report_problems(path: str, problems: list[str], limit: int = 20) -> None:
    """Print each malformed row (up to ``limit``) and the count to stderr."""
    for problem in problems[:limit]:
        print(f"[data] malformed row skipped: {problem}", file=sys.stderr)
    if len(problems) > limit:
        print(f"[data] ... and {len(problems) - limit} more", file=sys.stderr)
    if problems:
        print(f"[data] {path}: {len(problems)} malformed row(s) skipped", file=sys.stderr)


def read_sentiment(path: str, num_labels: int, labelled: bool | None = None,
                   problems: list[str] | None = None) -> list[SentimentExample]:
    """Read an SST/CFIMDB file.  Malformed rows are reported and skipped (and appended to
    ``problems`` when given)."""
    rows, found = _read_rows(path, ("sentence",), "sentiment", num_labels, labelled)
    report_problems(path, found)
    if problems is not None:
        problems.extend(found)
    return [SentimentExample(i, texts[0], label) for i, texts, label in rows]


def read_paraphrase(path: str, labelled: bool | None = None,
                    problems: list[str] | None = None) -> list[ParaphraseExample]:
    """Read a Quora file.  Malformed rows are reported and skipped (and appended to
    ``problems`` when given)."""
    rows, found = _read_rows(path, ("sentence1", "sentence2"), "is_duplicate", 2, labelled)
    report_problems(path, found)
    if problems is not None:
        problems.extend(found)
    return [ParaphraseExample(i, texts[0], texts[1], label) for i, texts, label in rows]


def write_sentiment(path: str, examples: list[SentimentExample], labelled: bool) -> None:
    """Write examples as tab-separated ``id, sentence[, sentiment]``."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["id", "sentence", "sentiment"] if labelled else ["id", "sentence"])
        for e in examples:
            writer.writerow([e.id, e.sentence, e.label] if labelled else [e.id, e.sentence])


def write_paraphrase(path: str, examples: list[ParaphraseExample], labelled: bool) -> None:
    """Write examples as tab-separated ``id, sentence1, sentence2[, is_duplicate]``."""
    columns = ["id", "sentence1", "sentence2"] + (["is_duplicate"] if labelled else [])
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(columns)
        for e in examples:
            writer.writerow([e.id, e.sentence1, e.sentence2] + ([e.label] if labelled else []))

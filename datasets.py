"""Loaders shared by the Part 2 scripts: course data rows, the tokenizer, the GPT-2 weights.

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

import argparse
import csv
import math
import os
import sys
from dataclasses import dataclass

REPO = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.path.join(REPO, "data")
PREPARE_HINT = ("run `python data/prepare.py --from ../shared/data/cs224n "
                "--tokenizer ../shared/data/gpt2-tokenizer` first, or pass --data_dir")


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


# --- tokenizer and model --------------------------------------------------------------

def device_from_args(args: argparse.Namespace):
    """CUDA when --use_gpu is given (exit with what to drop when there is none), else CPU.
    Returns a torch.device."""
    import torch

    if args.use_gpu and not torch.cuda.is_available():
        raise SystemExit("--use_gpu given but CUDA is not available; drop --use_gpu")
    return torch.device("cuda" if args.use_gpu else "cpu")


def bounded(kind: type, low: float | None = None, high: float | None = None,
            low_open: bool = False, high_open: bool = False):
    """An argparse ``type``: ``kind(text)`` within [low, high] (``low_open``/``high_open``
    exclude that end).  A bad value is refused with the value and the allowed range, e.g.
    ``argument --epochs: -1 is not an integer >= 1``."""
    name = "an integer" if kind is int else "a number"
    limits = ([f"{'>' if low_open else '>='} {low:g}"] if low is not None else []) + \
             ([f"{'<' if high_open else '<='} {high:g}"] if high is not None else [])
    wanted = f"{name} {' and '.join(limits)}".strip()

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not {wanted}")
        return value

    parse.__name__ = wanted  # what argparse names in its own messages
    return parse


POSITIVE_INT = bounded(int, 1)
POSITIVE_FLOAT = bounded(float, 0.0, low_open=True)
PROBABILITY_BELOW_ONE = bounded(float, 0.0, 1.0, high_open=True)  # dropout


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """The flags every task script shares: weights, tokenizer, data, device, training size."""
    parser.add_argument("--epochs", type=POSITIVE_INT, default=10)
    parser.add_argument("--batch_size", type=POSITIVE_INT, default=8)
    parser.add_argument("--max_train_examples", type=POSITIVE_INT, default=None,
                        help="train on the first N training examples only (smoke runs)")
    parser.add_argument("--use_gpu", action="store_true", help="CUDA with bf16 autocast")
    parser.add_argument("--model_size", default="gpt2",
                        choices=["gpt2", "gpt2-medium", "gpt2-large"],
                        help="published GPT-2 to load from the Hugging Face hub or cache")
    parser.add_argument("--model_path", default=None,
                        help="local Hugging Face GPT-2 checkpoint folder (config.json + "
                             "model.safetensors); overrides --model_size")
    parser.add_argument("--random_init", action="store_true",
                        help="random weights of --model_size's shape (smoke runs only)")
    parser.add_argument("--tokenizer", default=os.path.join(DATA_DIR, "gpt2-tokenizer"),
                        help="Hugging Face tokenizer name, or a folder with vocab.json and "
                             "merges.txt (default: the one data/prepare.py copies)")
    parser.add_argument("--sdpa", action="store_true",
                        help="fused attention (torch scaled_dot_product_attention)")
    parser.add_argument("--data_dir", default=DATA_DIR, help="prepared data folder")
    parser.add_argument("--out_dir", default=os.path.join(REPO, "predictions"),
                        help="where prediction files are written")
    parser.add_argument("--seed", type=int, default=11711)


def load_tokenizer(name_or_dir: str):
    """A GPT-2 ``PreTrainedTokenizerFast`` with ``<|endoftext|>`` as its pad token.

    ``name_or_dir`` is a folder holding ``vocab.json`` and ``merges.txt`` or a Hugging Face
    name (which needs the network or the Hugging Face cache).
    """
    from transformers import AutoTokenizer, GPT2TokenizerFast

    if not os.path.isdir(name_or_dir) and (os.sep in name_or_dir or name_or_dir.startswith(".")):
        raise SystemExit(f"tokenizer folder {name_or_dir} not found; pass --tokenizer "
                         "../shared/data/gpt2-tokenizer (a folder with vocab.json and "
                         f"merges.txt), or {PREPARE_HINT}")
    if os.path.isdir(name_or_dir):
        files = [os.path.join(name_or_dir, f) for f in ("vocab.json", "merges.txt")]
        if not all(os.path.isfile(f) for f in files):
            raise SystemExit(f"tokenizer folder {name_or_dir} needs vocab.json and merges.txt")
        tokenizer = GPT2TokenizerFast.from_pretrained(name_or_dir)
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(name_or_dir)
        except OSError as error:
            raise SystemExit(
                f"cannot load tokenizer {name_or_dir!r} ({error.__class__.__name__}); pass "
                "--tokenizer ../shared/data/gpt2-tokenizer (a folder with vocab.json and "
                f"merges.txt), or {PREPARE_HINT}") from error
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_gpt2(args: argparse.Namespace, **config_overrides):
    """The ``GPT2Model`` the flags of ``add_model_args`` ask for.

    ``config_overrides`` (e.g. ``hidden_dropout_prob``) apply to every path; ``--sdpa``
    adds ``attention_impl="sdpa"``.  Exits with what to pass when no weights can be had.
    """
    from config import GPT2Config
    from models.gpt2 import GPT2Model

    if args.sdpa:
        config_overrides["attention_impl"] = "sdpa"
    if args.random_init:
        if args.model_path:
            from transformers import AutoConfig
            config = GPT2Config.from_hf(AutoConfig.from_pretrained(args.model_path),
                                        **config_overrides)
        else:
            config = GPT2Config.from_preset(args.model_size, **config_overrides)
        return GPT2Model(config)
    source = args.model_path or args.model_size
    if args.model_path and not os.path.isdir(args.model_path):
        raise SystemExit(f"--model_path {args.model_path} is not a folder; pass a Hugging "
                         "Face GPT-2 checkpoint folder (config.json + model.safetensors)")
    try:
        return GPT2Model.from_pretrained(source, **config_overrides)
    except OSError as error:
        raise SystemExit(f"{error}\nOr pass --random_init for a smoke run with random "
                         "weights.") from error

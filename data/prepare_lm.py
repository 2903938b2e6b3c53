"""Tokenize a corpus once into train.bin / val.bin (uint16 memory maps) and meta.json.

    python data/prepare_lm.py --tokenizer bytes --out_dir data/shakespeare_char
    python data/prepare_lm.py --tokenizer gpt2 --out_dir data/shakespeare
    python data/prepare_lm.py --input ../shared/data/wikitext-2/valid.txt \\
        --val_input ../shared/data/wikitext-2/test.txt --vocab_size 4096 --out_dir data/wiki
    python data/prepare_lm.py --hf_dataset roneneldan/TinyStories --hf_val_split validation \\
        --tokenizer gpt2 --out_dir data/tinystories

The layout is nanoGPT's (``data/shakespeare_char/prepare.py``): the token ids of each split
one after the other in ``train.bin`` and ``val.bin`` (``np.uint16``), and ``meta.json`` with the
tokenizer and the split; ``training/lm_data.py`` reads them back. The tokenizer's files go to
``out_dir/tokenizer/``, so the folder is self-contained.

Tokenizers (all through the kit's ``bpe.py``), picked by ``--tokenizer``:

- ``gpt2``: the GPT-2 files (``gpt2-tokenizer`` of the course data, ``training/paths.py``,
  else the Hugging Face cache);
- ``bytes``: the 256 bytes, no merges (on ASCII text this is character level), and
  ``<|endoftext|>`` as id 256 (a vocabulary of 257), so documents have an end and sampling a
  stop;
- ``DIR``: the ``vocab.json`` and ``merges.txt`` of a folder;
- ``--vocab_size N`` (with no ``--tokenizer``, or ``--tokenizer bpe``): a BPE trained on the
  training split, with ``<|endoftext|>`` as its special token.

With neither ``--input`` nor ``--hf_dataset`` the corpus is Tiny Shakespeare from the course
data (``training/paths.py``: ``data/`` in a release, ``../shared/data`` in the staff tree).

Splits: with ``--val_input`` each file is one split; otherwise the first ``1 - val_fraction``
(default 90%) of the characters train and the rest validate, as nanoGPT's shakespeare_char.
A Hugging Face dataset (``--hf_dataset``, a hub name or a folder written by ``save_to_disk``)
gives the texts of one column; its documents are joined with ``<|endoftext|>``, as in
TinyStories' text files, and it is split the same way unless ``--hf_val_split`` names a split.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
from array import array
from collections.abc import Callable
from contextlib import nullcontext
from itertools import pairwise
from pathlib import Path

import regex
from tqdm import tqdm

from bpe import Tokenizer, train_bpe

from training.lm_data import EOT, gpt2_tokenizer_dir, load_tokenizer_dir, read_text
from training.paths import TINY_SHAKESPEARE, course_data
from training.helpformat import HelpFormatter

DTYPE = "uint16"  # nanoGPT's: every id must be at most 65,535
MAX_VOCAB = 1 << 16
TOKENIZER_DIR = "tokenizer"  # where the tokenizer files go inside out_dir
PIECE_CHARS = 1 << 20  # text is encoded about this many characters at a time
PARALLEL_MIN_CHARS = 1 << 23  # shorter texts are encoded in this process
_SAFE_CUT = regex.compile(r"\S(?=\s)")  # a cut after this match keeps the pre-tokens


def read_hf_texts(name: str, config: str | None, split: str, column: str) -> list[str]:
    """The ``column`` texts of one split of a Hugging Face dataset (hub name or a
    ``save_to_disk`` folder).  Raises ValueError naming the split or column when absent."""
    import datasets  # the Hugging Face library: imported only for this source

    if Path(name).is_dir():
        data = datasets.load_from_disk(name)
        if isinstance(data, datasets.DatasetDict):
            if split not in data:
                raise ValueError(f"dataset {name} has splits {list(data)}, not {split!r}; "
                                 "pass --hf_split")
            data = data[split]
    else:
        try:
            data = datasets.load_dataset(name, config, split=split)
        except Exception as error:  # hub, network or cache: any failure means no data here
            raise ValueError(f"could not load Hugging Face dataset {name!r} split {split!r} "
                             f"({error.__class__.__name__}: {error}); without a network, pass "
                             "a folder written by Dataset.save_to_disk") from None
    if column not in data.column_names:
        raise ValueError(f"dataset {name} split {split!r} has columns {data.column_names}, "
                         f"not {column!r}; pass --text_column")
    return list(data[column])


def split_text(text: str, val_fraction: float) -> tuple[str, str]:
    """The first ``1 - val_fraction`` of the characters, and the rest (nanoGPT's rule:
    ``cut = int(len(text) * (1 - val_fraction))``)."""
    cut = int(len(text) * (1 - val_fraction))
    return text[:cut], text[cut:]


def check_vocab_fits(vocab_size: int, what: str) -> None:
    """Raise ValueError when ids up to ``vocab_size - 1`` do not fit ``uint16``."""
    if vocab_size > MAX_VOCAB:
        raise ValueError(f"{what} has a vocabulary of {vocab_size:,} tokens; {DTYPE} holds ids "
                         f"0..{MAX_VOCAB - 1:,} only, so the vocabulary may hold at most "
                         f"{MAX_VOCAB:,} tokens")


def bytes_tokenizer(spec: str, train_text: str, vocab_size: int | None) -> Tokenizer:
    """The 256 single bytes, no merges, and ``<|endoftext|>`` as id 256."""
    return Tokenizer({i: bytes([i]) for i in range(256)}, [], [EOT])


def gpt2_tokenizer(spec: str, train_text: str, vocab_size: int | None) -> Tokenizer:
    """GPT-2's 50,257 tokens, ``<|endoftext|>`` = 50256."""
    return load_tokenizer_dir(gpt2_tokenizer_dir()).tokenizer


def folder_tokenizer(spec: str, train_text: str, vocab_size: int | None) -> Tokenizer:
    """The tokenizer files in folder ``spec``."""
    if not Path(spec).is_dir():
        raise FileNotFoundError(f"--tokenizer {spec}: no such folder; pass gpt2, bytes, or a "
                                "folder with vocab.json and merges.txt")
    return load_tokenizer_dir(spec).tokenizer


def trained_tokenizer(spec: str, train_text: str, vocab_size: int | None) -> Tokenizer:
    """A byte-level BPE of ``vocab_size`` tokens trained on the training split."""
    check_vocab_fits(vocab_size, f"--vocab_size {vocab_size}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.txt"
        path.write_text(train_text, encoding="utf-8", newline="")
        vocab, merges = train_bpe(path, vocab_size, [EOT], progress=True)
    return Tokenizer(vocab, merges, [EOT])


# --tokenizer value -> how to build it; any other value is a folder.
TOKENIZERS: dict[str, Callable[[str, str, int | None], Tokenizer]] = {
    "gpt2": gpt2_tokenizer,
    "bytes": bytes_tokenizer,
    "bpe": trained_tokenizer,
    "dir": folder_tokenizer,
}


def tokenizer_kind(tokenizer: str | None, vocab_size: int | None) -> str:
    """The key of ``TOKENIZERS`` the flags ask for; ValueError when they contradict."""
    if vocab_size is not None:
        if tokenizer not in (None, "bpe"):
            raise ValueError(f"--vocab_size trains a tokenizer on the corpus; drop --tokenizer "
                             f"{tokenizer} (or drop --vocab_size to use it)")
        return "bpe"
    if tokenizer is None or tokenizer == "bpe":
        raise ValueError("pass --tokenizer gpt2|bytes|DIR, or --vocab_size N to train one")
    return tokenizer if tokenizer in TOKENIZERS else "dir"


def read_splits(args: argparse.Namespace) -> tuple[str, str, dict, dict]:
    """``(train_text, val_text, source, split)`` from the source flags, each split non-empty."""
    if args.hf_dataset:
        source = {"kind": "hf_dataset", "name": args.hf_dataset, "config": args.hf_config,
                  "split": args.hf_split, "val_split": args.hf_val_split,
                  "text_column": args.text_column}
        text = EOT.join(read_hf_texts(args.hf_dataset, args.hf_config, args.hf_split,
                                      args.text_column))
        val = None if args.hf_val_split is None else EOT.join(read_hf_texts(
            args.hf_dataset, args.hf_config, args.hf_val_split, args.text_column))
        where = f"--hf_dataset {args.hf_dataset} split {args.hf_split}"
        val_where = f"--hf_dataset {args.hf_dataset} split {args.hf_val_split}"
    else:
        source = {"kind": "files", "input": args.input, "val_input": args.val_input}
        text = read_text(args.input)
        val = None if args.val_input is None else read_text(args.val_input)
        where, val_where = args.input, args.val_input
    if val is None:
        train, val = split_text(text, args.val_fraction)
        split = {"kind": "fraction", "val_fraction": args.val_fraction, "train_chars": len(train),
                 "val_chars": len(val)}
        where, val_where = (f"the {part} of {where} ({len(text):,} characters)"
                            for part in (f"first {1 - args.val_fraction:g}",
                                         f"last {args.val_fraction:g}"))
    else:
        train, split = text, {"kind": "separate", "val_fraction": None}
    for name, part, origin in (("training", train, where), ("validation", val, val_where)):
        if not part:
            raise ValueError(f"the {name} split is empty ({origin} gives no text); give a "
                             "longer text or an explicit non-empty file")
    return train, val, source, split


def cut_points(text: str, size: int) -> list[int]:
    """Offsets ``[0, ..., len(text)]`` cutting ``text`` into pieces of about ``size``
    characters, each cut just after a non-space character that whitespace follows: such a
    cut never changes the GPT-2 pre-tokens (see bpe.py), so the pieces' ids, concatenated,
    are the ids of the whole text."""
    bounds = [0]
    while match := _SAFE_CUT.search(text, bounds[-1] + size):
        bounds.append(match.end())
    return bounds + [len(text)] if bounds[-1] < len(text) else bounds


_worker: Tokenizer | None = None  # each worker process's copy of the tokenizer


def _start_worker(tokenizer: Tokenizer) -> None:
    global _worker
    _worker = tokenizer


def _encode_piece(piece: str) -> array:
    return array("H", _worker.encode(piece))


def write_ids(tokenizer: Tokenizer, text: str, path: Path, desc: str, workers: int = 1) -> int:
    """Encode ``text`` into ``path`` as ``uint16`` ids, a piece at a time (by ``workers``
    processes for a text of ``PARALLEL_MIN_CHARS`` or more); returns how many ids."""
    bounds = cut_points(text, PIECE_CHARS)
    pieces = (text[a:b] for a, b in pairwise(bounds))
    parallel = workers > 1 and len(text) >= PARALLEL_MIN_CHARS
    pool = multiprocessing.Pool(workers, _start_worker, (tokenizer,)) if parallel else None
    _start_worker(tokenizer)
    encoded = pool.imap(_encode_piece, pieces) if pool else map(_encode_piece, pieces)
    count = 0
    with path.open("wb") as f, pool or nullcontext():
        for ids in tqdm(encoded, desc=desc, total=len(bounds) - 1, unit="piece"):
            ids.tofile(f)
            count += len(ids)
    return count


def prepare(args: argparse.Namespace) -> dict:
    """Write train.bin, val.bin, meta.json and tokenizer/ into ``args.out_dir``; returns meta."""
    kind = tokenizer_kind(args.tokenizer, args.vocab_size)
    train, val, source, split = read_splits(args)
    tokenizer = TOKENIZERS[kind](args.tokenizer, train, args.vocab_size)
    vocab_size = max(tokenizer.vocab) + 1
    check_vocab_fits(vocab_size, f"tokenizer {args.tokenizer}")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save(out / TOKENIZER_DIR)
    meta = {
        "tokenizer": kind,
        "tokenizer_dir": TOKENIZER_DIR,
        "tokenizer_source": None if kind in ("bytes", "bpe") else args.tokenizer,
        "vocab_size": vocab_size,
        "eot_token": tokenizer.special_ids.get(EOT),
        "dtype": DTYPE,
        "train_tokens": write_ids(tokenizer, train, out / "train.bin", "train", args.workers),
        "val_tokens": write_ids(tokenizer, val, out / "val.bin", "val", args.workers),
        "train_bytes": len(train.encode("utf-8")),
        "val_bytes": len(val.encode("utf-8")),
        "source": source,
        "split": split,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def parse_args(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--input", help="UTF-8 text file (the whole corpus, or the training "
                        f"split; default: {TINY_SHAKESPEARE} of the course data)")
    source.add_argument("--hf_dataset",
                        help="Hugging Face dataset: hub name or save_to_disk folder")
    parser.add_argument("--val_input", help="UTF-8 text file for the validation split")
    parser.add_argument("--hf_config", help="dataset configuration name")
    parser.add_argument("--hf_split", default="train", help="dataset split to read (train)")
    parser.add_argument("--hf_val_split", help="dataset split to validate on (default: the "
                        "last --val_fraction of --hf_split)")
    parser.add_argument("--text_column", default="text", help="column holding the text (text)")
    parser.add_argument("--tokenizer", help="gpt2, bytes, or a folder with vocab.json and "
                        "merges.txt (omit with --vocab_size)")
    parser.add_argument("--vocab_size", type=int, help="train a BPE of this many tokens on the "
                        "training split")
    parser.add_argument("--val_fraction", type=float, default=0.1,
                        help="share of the text that validates, from the end (0.1)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="encoding processes for texts over 8M characters (CPU count)")
    parser.add_argument("--out_dir", required=True, help="folder for train.bin, val.bin, meta.json")
    args = parser.parse_args(argv)
    if args.input is None and args.hf_dataset is None:
        args.input = str(course_data(TINY_SHAKESPEARE))
    if args.val_input and args.hf_dataset:
        parser.error("--val_input goes with --input; with --hf_dataset use --hf_val_split")
    if args.workers < 1:
        parser.error(f"--workers must be a positive integer, got {args.workers}")
    if not 0.0 < args.val_fraction < 1.0:
        parser.error(f"--val_fraction must be between 0 and 1, got {args.val_fraction}")
    return parser, args


def main(argv: list[str] | None = None) -> dict:
    parser, args = parse_args(argv)
    try:
        meta = prepare(args)
    except (FileNotFoundError, ValueError) as error:
        parser.exit(2, f"prepare_lm.py: error: {error}\n")
    print(f"wrote {args.out_dir}: {meta['train_tokens']:,} train and {meta['val_tokens']:,} val "
          f"tokens, vocab {meta['vocab_size']:,} ({meta['tokenizer']})", file=sys.stderr)
    return meta


if __name__ == "__main__":
    main()

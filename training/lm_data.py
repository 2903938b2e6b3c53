"""A tokenized corpus on disk, as `data/prepare_lm.py` writes it (nanoGPT style).

A prepared folder holds:

- ``train.bin``, ``val.bin``: the token ids of each split, one after the other, as a flat
  array of ``meta["dtype"]`` (``uint16``), read back with ``np.memmap`` without loading it;
- ``meta.json``: the tokenizer and the split (keys in ``META_KEYS``);
- ``tokenizer/``: the tokenizer's ``vocab.json``, ``merges.txt`` and
  ``tokenizer_config.json`` (``bpe.Tokenizer.save``), so the folder is self-contained.

This module reads such a folder and tokenizer folders, and finds the GPT-2 tokenizer files;
it knows no model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bpe import Tokenizer, token_bytes
from training.paths import GPT2_TOKENIZER, course_data

EOT = "<|endoftext|>"  # GPT-2's end-of-text token, the one special token the kit uses
SPLITS = ("train", "val")
META_KEYS = ("tokenizer", "tokenizer_dir", "vocab_size", "eot_token", "dtype", "train_tokens",
             "val_tokens", "train_bytes", "val_bytes", "source", "split")
PREPARE_EXAMPLE = ("python data/prepare_lm.py "
                   "--tokenizer bytes --out_dir {out}")


def prepare_hint(data_dir: str | os.PathLike) -> str:
    """The command that makes a prepared folder, for error messages."""
    return "make it with `" + PREPARE_EXAMPLE.format(out=data_dir) + "`"


def read_text(path: str | os.PathLike) -> str:
    """The text of a UTF-8 file, line endings kept as they are.

    Raises FileNotFoundError for a missing file, ValueError naming the byte offset of the
    first byte that is not UTF-8.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text: byte 0x{data[error.start]:02x} at byte "
                         f"offset {error.start} ({error.reason})") from None


def read_meta(data_dir: str | os.PathLike) -> dict:
    """The ``meta.json`` of a prepared folder, checked to hold every key of ``META_KEYS``.

    Raises FileNotFoundError (with the command that makes the folder) when the folder or
    its meta.json is missing, ValueError when meta.json is not a JSON object with those keys.
    """
    path = Path(data_dir) / "meta.json"
    if not Path(data_dir).is_dir():
        raise FileNotFoundError(f"data folder {data_dir} not found; {prepare_hint(data_dir)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {data_dir} is not a prepared corpus; "
                                f"{prepare_hint(data_dir)}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); {prepare_hint(data_dir)}") from None
    missing = [key for key in META_KEYS if not isinstance(meta, dict) or key not in meta]
    if missing:
        raise ValueError(f"{path} lacks the keys {missing}; {prepare_hint(data_dir)}")
    return meta


def bytes_per_token(meta: dict, split: str) -> float:
    """UTF-8 bytes per token of a split: a mean loss in nats per token L gives
    ``L / ln 2 / bytes_per_token`` bits per byte.  Example: 1,003,854 bytes in 301,966 GPT-2
    tokens is 3.32 bytes per token, so a loss of 3.0 is 1.30 bits per byte."""
    return meta[f"{split}_bytes"] / meta[f"{split}_tokens"]


def open_split(data_dir: str | os.PathLike, split: str) -> np.memmap:
    """The token ids of ``split`` ("train" or "val"): a read-only 1-D ``np.memmap`` [N].

    Raises ValueError for another split name or a file whose size is not a whole number of
    tokens, FileNotFoundError (with the command that makes it) for a missing file.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    meta = read_meta(data_dir)
    path = Path(data_dir) / f"{split}.bin"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; {prepare_hint(data_dir)}")
    dtype = np.dtype(meta["dtype"])
    size = path.stat().st_size
    if size % dtype.itemsize or size // dtype.itemsize != meta[f"{split}_tokens"]:
        raise ValueError(f"{path} holds {size} bytes but meta.json says {meta[f'{split}_tokens']} "
                         f"{dtype.name} tokens; prepare the folder again: {prepare_hint(data_dir)}")
    return np.memmap(path, dtype=dtype, mode="r")


@dataclass
class LMTokenizer:
    """A prepared folder's tokenizer: ``encode(str) -> list[int]``, ``decode(ids) -> str``.

    ``eot_token`` is the id of ``<|endoftext|>`` (256 for the bytes tokenizer), or None for
    a tokenizer folder without one;
    ``vocab_size`` is one more than the largest id.
    """

    tokenizer: Tokenizer
    eot_token: int | None

    @property
    def vocab_size(self) -> int:
        return max(self.tokenizer.vocab) + 1

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    def token_bytes(self, ids: list[int]) -> int:
        """How many UTF-8 bytes the text of ``ids`` holds (a special token counts its text)."""
        return sum(len(self.tokenizer.vocab[i]) for i in ids)


def load_tokenizer_dir(directory: str | os.PathLike) -> LMTokenizer:
    """A byte-level BPE tokenizer folder: ``vocab.json`` + ``merges.txt`` (the GPT-2 files,
    or what ``bpe.Tokenizer.save`` writes), else a Hugging Face ``tokenizer.json`` (what
    ``transformers`` 5 ``save_pretrained`` writes).  ``<|endoftext|>`` is special when the
    vocabulary holds it."""
    directory = Path(directory)
    vocab = directory / "vocab.json"
    if vocab.is_file() and (directory / "merges.txt").is_file():
        specials = [EOT] if EOT in json.loads(vocab.read_text(encoding="utf-8")) else []
        tokenizer = Tokenizer.load(directory, specials)
    elif (directory / "tokenizer.json").is_file():
        tokenizer = read_tokenizer_json(directory / "tokenizer.json")
    else:
        raise FileNotFoundError(f"tokenizer folder {directory} needs vocab.json and merges.txt, "
                                "or tokenizer.json")
    return LMTokenizer(tokenizer, tokenizer.special_ids.get(EOT))


def read_tokenizer_json(path: Path) -> Tokenizer:
    """The byte-level BPE of a Hugging Face ``tokenizer.json``: ``model.vocab`` (token string
    -> id, GPT-2's byte alphabet), ``model.merges`` ("left right" strings or pairs) and the
    special ``added_tokens``.  ValueError for another tokenizer model."""
    data = json.loads(path.read_text(encoding="utf-8"))
    model = data.get("model") or {}
    if model.get("type") != "BPE":
        raise ValueError(f"{path}: tokenizer model {model.get('type')!r} is not a byte-level BPE")
    added = {t["content"]: t["id"] for t in data.get("added_tokens", []) if t.get("special")}
    vocab = {i: text.encode("utf-8") if text in added else token_bytes(text, f"{path}: {i}")
             for text, i in model["vocab"].items()}
    vocab.update({i: text.encode("utf-8") for text, i in added.items()})
    merges = []
    for n, merge in enumerate(model["merges"]):
        parts = merge.split(" ") if isinstance(merge, str) else merge
        merges.append(tuple(token_bytes(p, f"{path}: merge {n}") for p in parts))
    return Tokenizer(vocab, merges, [EOT] if EOT in added else [])


def load_lm_tokenizer(data_dir: str | os.PathLike) -> LMTokenizer:
    """The tokenizer a prepared folder was made with (its ``tokenizer_dir``)."""
    meta = read_meta(data_dir)
    tokenizer = load_tokenizer_dir(Path(data_dir) / meta["tokenizer_dir"])
    if tokenizer.eot_token != meta["eot_token"] or tokenizer.vocab_size != meta["vocab_size"]:
        raise ValueError(f"{data_dir}: the tokenizer files (vocab {tokenizer.vocab_size}, eot "
                         f"{tokenizer.eot_token}) disagree with meta.json (vocab "
                         f"{meta['vocab_size']}, eot {meta['eot_token']}); "
                         f"{prepare_hint(data_dir)}")
    return tokenizer


def gpt2_tokenizer_dir() -> Path:
    """A folder with the GPT-2 ``vocab.json`` and ``merges.txt``.

    First the course copy (``training/paths.py``: ``data/gpt2-tokenizer`` in a release,
    ``../shared/data/gpt2-tokenizer`` in the staff tree), then the Hugging Face cache, then
    the hub (network). Raises FileNotFoundError saying what to pass when none has them.
    """
    course = course_data(GPT2_TOKENIZER)
    if (course / "vocab.json").is_file() and (course / "merges.txt").is_file():
        return course
    from huggingface_hub import hf_hub_download

    errors = []
    for local_only in (True, False):
        try:
            files = [hf_hub_download("openai-community/gpt2", name, local_files_only=local_only)
                     for name in ("vocab.json", "merges.txt")]
            return Path(files[0]).parent
        except Exception as error:  # noqa: BLE001  (offline, no cache: any hub error)
            errors.append(f"{error.__class__.__name__}")
    raise FileNotFoundError(
        f"GPT-2 tokenizer files not found in {course}, nor in the Hugging Face cache or hub "
        f"({', '.join(errors)}); pass --tokenizer DIR, a folder with vocab.json and merges.txt "
        "(in this project: ../shared/data/gpt2-tokenizer)")

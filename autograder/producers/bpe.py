"""Producers for `bpe.py`: pair counting, merging, the merge priority, training, encoding.

Dicts of pairs become sorted int64 arrays `[[a, b, value], ...]`; byte strings become a
uint8 array of their concatenation plus an int64 array of lengths, so the judge compares
plain numbers.  Strings in `params` are UTF-8 text turned into bytes here.  A case that
grades one helper gives it every other input in its params (the counts `update_pair_counts`
starts from), so that it runs alone, in the student's copy of the handout too.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np


def _pairs(mapping: dict) -> np.ndarray:
    """{(a, b): int} -> [[a, b, int], ...] sorted; {(a, b): set} -> one row per member."""
    rows = []
    for (a, b), value in mapping.items():
        values = sorted(value) if isinstance(value, set) else [value]
        rows += [[int(a), int(b), int(v)] for v in values]
    return np.array(sorted(rows), dtype=np.int64).reshape(-1, 3)


def _ints(values) -> np.ndarray:
    return np.array([int(v) for v in values], dtype=np.int64)


def _byte_strings(strings: list[bytes], name: str) -> dict[str, np.ndarray]:
    if not all(isinstance(s, bytes) for s in strings):
        raise TypeError(f"{name} must hold bytes objects")
    return {f"{name}_lengths": _ints(len(s) for s in strings),
            f"{name}_bytes": np.frombuffer(b"".join(strings), dtype=np.uint8).copy()}


def count_pairs(params: dict[str, Any]) -> dict[str, np.ndarray]:
    from bpe import count_pairs as student

    counts, where = student([list(w) for w in params["words"]], list(params["freqs"]))
    return {"counts": _pairs(counts), "where": _pairs(where)}


def merge_ids(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """Each example's result, and its input afterwards (it must not change)."""
    from bpe import merge_ids as student

    result = {}
    for i, (ids, pair, new_id) in enumerate(params["examples"]):
        given = list(ids)
        result[f"out_{i}"] = _ints(student(given, tuple(pair), new_id))
        result[f"input_after_{i}"] = _ints(given)
    return result


def update_pair_counts(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`update_pair_counts` from the counts of params["pairs"] ([a, b, count, [words]] per
    pair, as `count_pairs` gives them for params["words"] and "freqs"), so that it runs
    alone: word params["w"] becomes params["new_ids"]."""
    from bpe import update_pair_counts as student

    words, freqs, w = params["words"], params["freqs"], params["w"]
    counts = {(a, b): count for a, b, count, _ in params["pairs"]}
    where = {(a, b): set(holding) for a, b, _, holding in params["pairs"]}
    student(counts, where, w, list(words[w]), list(params["new_ids"]), freqs[w])
    return {"counts": _pairs(counts), "where": _pairs(where)}


def pair_key(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """The order (best first) that `pair_key` gives to the listed (count, left, right)."""
    from bpe import pair_key as student

    items = [(count, left.encode(), right.encode()) for count, left, right in params["items"]]
    keys = [student(*item) for item in items]
    order = sorted(range(len(items)), key=lambda i: keys[i], reverse=True)
    return {"order": _ints(order)}


def train(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`train_bpe` on a small corpus written to a file: the merges and the vocabulary."""
    from bpe import train_bpe

    handle, path = tempfile.mkstemp(suffix=".txt", dir=os.environ.get("TMPDIR"))
    with os.fdopen(handle, "w", encoding="utf-8") as f:
        f.write(params["corpus"])
    vocab, merges = train_bpe(path, params["vocab_size"], params.get("special_tokens", []),
                              workers=1)
    ids = sorted(vocab)
    return {**_byte_strings([left for left, _ in merges], "merge_left"),
            **_byte_strings([right for _, right in merges], "merge_right"),
            "vocab_ids": _ints(ids), **_byte_strings([vocab[i] for i in ids], "vocab")}


def encode(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`Tokenizer.encode` (its merge loop is the student's `encode_word`) and the
    round trip through `decode`, on edge-case texts; the vocabulary is built here."""
    from bpe import Tokenizer

    merges = [(left.encode(), right.encode()) for left, right in params["merges"]]
    vocab = {i: bytes([i]) for i in range(256)}
    for left, right in merges:
        vocab[len(vocab)] = left + right
    tokenizer = Tokenizer(vocab, merges, params.get("special_tokens", []))
    result = {}
    for i, text in enumerate(params["texts"]):
        ids = tokenizer.encode(text)
        result[f"ids_{i}"] = _ints(ids)
        result[f"roundtrip_{i}"] = np.frombuffer(tokenizer.decode(ids).encode("utf-8"),
                                                 dtype=np.uint8).copy()
    return result


PRODUCERS = {"bpe_count_pairs": count_pairs, "bpe_merge_ids": merge_ids,
             "bpe_update_pair_counts": update_pair_counts, "bpe_pair_key": pair_key,
             "bpe_train": train, "bpe_encode": encode}

"""Byte-level BPE from scratch: training, GPT-2-exact encoding, and the GPT-2 file format.

The file reads top to bottom:

1. pre-tokenization: split on special tokens, then the GPT-2 regex; a large file is cut into
   chunks at safe boundaries and counted by worker processes;
2. training: the helpers students write (``count_pairs``, ``merge_ids``, ``update_pair_counts``,
   ``pair_key``) and ``train_bpe``, which drives them with a max-heap so each merge touches
   only the pre-tokens that contain the merged pair;
3. ``Tokenizer``: ``encode`` (``encode_word`` is the student's merge loop), ``decode``,
   ``encode_iterable``, and GPT-2 ``vocab.json``/``merges.txt`` reading and writing;
4. the command line: ``python bpe.py train ...`` and ``python bpe.py encode ...``.

Ids and bytes: a vocabulary is ``dict[int, bytes]``; merges are an ordered
``list[tuple[bytes, bytes]]`` (merge 0 is applied first). A trained vocabulary holds the 256
single bytes as ids 0..255, then the special tokens, then one id per merge.
"""

from __future__ import annotations

import argparse
import heapq
import json
import multiprocessing
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from itertools import chain, pairwise
from pathlib import Path

import regex
from tqdm import tqdm

from training.helpformat import HelpFormatter

# The GPT-2 pre-tokenizer (openai/gpt-2 encoder.py): contractions, letters, numbers, other
# symbols (each optionally after one space), then whitespace runs. `\s+(?!\S)` leaves the last
# space of a run to start the next word, so " hello" stays one pre-token.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
PRETOKENIZER = regex.compile(GPT2_PATTERN)

# A cut between a non-space character and a whitespace character never changes the
# pre-tokens: no pre-token holds non-space text followed by whitespace, and pre-tokens to the
# right of the cut depend only on the text to the right. Bytes version for files: ASCII only.
_FILE_CUT = regex.compile(rb"[!-~](?=[\t\n\x0b\x0c\r ])")
_TEXT_CUT = regex.compile(r"(?r)\S(?=\s)")
# In ASCII text \p{L} is [A-Za-z], \p{N} is [0-9] and \s is [\t\n\v\f\r ], so the standard
# library's `re` finds the same pre-tokens with this pattern, about twice as fast as `regex`.
_SPACE = r"\t\n\x0b\x0c\r "
_ASCII_PRETOKENIZER = re.compile(rf"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+"""
                                 rf"""| ?[^{_SPACE}A-Za-z0-9]+|[{_SPACE}]+(?![^{_SPACE}])|[{_SPACE}]+""")
_ASCII_CUT = re.compile(rf"[!-~](?=[{_SPACE}])")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")

CHUNK_BYTES = 1 << 20  # pre-tokenize the training file about this much at a time
PARALLEL_MIN_BYTES = 1 << 20  # smaller files are pre-tokenized in this process
STREAM_CHARS = 1 << 16  # encode_iterable encodes the buffered text in pieces of about this size
CACHE_WORDS = 1 << 18  # Tokenizer drops its pre-token cache when it holds more entries


# ----------------------------------------------------------------------------------------------
# 1. Pre-tokenization


def unique_special_tokens(special_tokens: Iterable[str] | None) -> list[str]:
    """The special tokens in order, without repeats; ValueError for an empty one."""
    tokens = list(dict.fromkeys(special_tokens or ()))
    if "" in tokens:
        raise ValueError("special tokens must be non-empty strings, got ''")
    return tokens


def special_pattern(special_tokens: Iterable[str]) -> regex.Pattern | None:
    """A regex that matches any special token, longest first, in one capturing group.

    Longest first, so with ``<|endoftext|>`` and ``<|endoftext|><|endoftext|>`` both special,
    the doubled text is one token. ``None`` when there are no special tokens.
    """
    tokens = sorted(set(special_tokens), key=len, reverse=True)
    if not tokens:
        return None
    return regex.compile("(" + "|".join(regex.escape(t) for t in tokens) + ")")


def pretokenize(text: str) -> list[str]:
    """GPT-2's pre-tokens of ``text``, exactly ``PRETOKENIZER.findall(text)``.

    Each stretch of non-ASCII characters is found by ``PRETOKENIZER`` between the nearest
    cuts around it (an ASCII non-space character followed by whitespace, see ``_FILE_CUT``);
    the ASCII text between those stretches by the faster ``_ASCII_PRETOKENIZER``.
    """
    if text.isascii():
        return _ASCII_PRETOKENIZER.findall(text)
    tokens: list[str] = []
    start, end = 0, len(text)
    for run in _NON_ASCII.finditer(text):
        if run.start() < start:
            continue  # inside the stretch just found
        left, low = start, max(start, run.start() - 64)
        while True:  # the last cut before the run, looked for in a growing window
            cuts = list(_ASCII_CUT.finditer(text, low, run.start()))
            if cuts or low == start:
                left = cuts[-1].end() if cuts else start
                break
            low = max(start, low - 1024)
        cut = _ASCII_CUT.search(text, run.end())
        right = end if cut is None else cut.end()
        tokens += _ASCII_PRETOKENIZER.findall(text, start, left)
        tokens += PRETOKENIZER.findall(text, left, right)
        start = right
    tokens += _ASCII_PRETOKENIZER.findall(text, start, end)
    return tokens


def count_pretokens(text: str, special_tokens: Iterable[str] = ()) -> Counter[str]:
    """How often each pre-token occurs in ``text``, never across or inside a special token."""
    splitter = special_pattern(special_tokens)
    pieces = splitter.split(text)[::2] if splitter else [text]  # odd items are the specials
    counts: Counter[str] = Counter()
    for piece in pieces:
        counts.update(pretokenize(piece))
    return counts


def find_chunk_boundaries(path: Path, n_chunks: int, special_tokens: list[str]) -> list[int]:
    """Byte offsets ``[0, ..., size]`` that cut ``path`` into about ``n_chunks`` chunks.

    Each cut lies at the start of a special token, or between an ASCII non-space character and
    ASCII whitespace at least one special-token length away from any special token; both
    leave the pre-tokens of the whole file unchanged. The first such place at or after each
    target offset is taken; a target with none in the next 64 KB is skipped.
    """
    size = path.stat().st_size
    specials = [t.encode("utf-8") for t in special_tokens]
    margin = max(map(len, specials), default=0)
    cut_re = regex.compile(b"|".join([regex.escape(t) for t in specials] + [_FILE_CUT.pattern]))
    bounds = [0]
    with path.open("rb") as f:
        for target in range(size // n_chunks, size, max(1, size // n_chunks)):
            lo = max(target, bounds[-1] + 1)
            start = max(0, lo - margin)  # read a margin before lo to see specials around it
            f.seek(start)
            window = f.read(lo - start + (1 << 16))
            for m in cut_re.finditer(window, lo - start):
                if m.group() in specials:
                    cut = start + m.start()
                    break
                near = window[max(0, m.end() - margin) : m.end() + margin]
                if not any(t in near for t in specials):
                    cut = start + m.end()
                    break
            else:
                continue
            if bounds[-1] < cut < size:
                bounds.append(cut)
    return bounds + [size]


def _count_file_chunk(job: tuple[Path, int, int, list[str]]) -> Counter[str]:
    """Pre-token counts of bytes ``[start, end)`` of a file (runs in a worker process)."""
    path, start, end, special_tokens = job
    with path.open("rb") as f:
        f.seek(start)
        data = f.read(end - start)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{path} is not valid UTF-8: byte 0x{data[e.start]:02x} at byte offset "
            f"{start + e.start} ({e.reason})"
        ) from None
    return count_pretokens(text, special_tokens)


def count_file_pretokens(path: Path, special_tokens: list[str], workers: int = 1) -> Counter[str]:
    """Pre-token counts of a UTF-8 file, counted by ``workers`` processes.

    Memory holds one chunk of about ``CHUNK_BYTES`` per process and the table of distinct
    pre-tokens, whatever the file size.
    Raises ValueError naming the byte offset of the first invalid UTF-8 byte.
    """
    size = path.stat().st_size
    parallel = workers > 1 and size >= PARALLEL_MIN_BYTES
    n_chunks = max(workers if parallel else 1, -(-size // CHUNK_BYTES))
    bounds = find_chunk_boundaries(path, n_chunks, special_tokens)
    jobs = [(path, a, b, special_tokens) for a, b in pairwise(bounds)]
    counts: Counter[str] = Counter()
    if parallel and len(jobs) > 1:
        with multiprocessing.Pool(min(workers, len(jobs))) as pool:
            for part in pool.imap(_count_file_chunk, jobs):
                counts.update(part)
    else:
        for job in jobs:
            counts.update(_count_file_chunk(job))
    return counts


# ----------------------------------------------------------------------------------------------
# 2. Training


def count_pairs(
    words: list[list[int]], freqs: list[int]
) -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], set[int]]]:
    """Count adjacent id pairs over all words, weighted by word frequency (handout 5.1).

    Args:
        words: ``words[w]`` is the token ids of distinct pre-token ``w``.
        freqs: ``freqs[w]`` is how often pre-token ``w`` occurs in the corpus.
    Returns:
        ``(counts, where)``: ``counts[(a, b)]`` is the total number of times ``a`` is directly
        followed by ``b`` (only pairs that occur); ``where[(a, b)]`` is the set of word indices
        ``w`` whose ids contain that pair.

    Example: words ``[[104, 105], [104, 105, 104]]`` ("hi", "hih") with freqs ``[3, 2]`` give
    counts ``{(104, 105): 5, (105, 104): 2}`` and where ``{(104, 105): {0, 1}, (105, 104): {1}}``.
    A pair that occurs twice in one word counts twice: ``[[5, 5, 5]]``, ``[1]`` gives
    ``{(5, 5): 2}``.
    """
    ### BEGIN SOLUTION
    counts: dict[tuple[int, int], int] = {}
    where: dict[tuple[int, int], set[int]] = {}
    for w, (ids, freq) in enumerate(zip(words, freqs, strict=True)):
        for pair in pairwise(ids):
            counts[pair] = counts.get(pair, 0) + freq
            where.setdefault(pair, set()).add(w)
    return counts, where
    ### END SOLUTION


def merge_ids(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace each occurrence of ``pair`` in ``ids`` by ``new_id``, scanning left to right
    (handout 5.2).

    Occurrences do not overlap: once two ids are merged, the scan continues after them.
    Returns a new list; ``ids`` is not changed.

    Examples: ``merge_ids([1, 2, 3, 1, 2], (1, 2), 7) == [7, 3, 7]``;
    ``merge_ids([5, 5, 5], (5, 5), 9) == [9, 5]``; ``merge_ids([4], (4, 4), 9) == [4]``.
    """
    ### BEGIN SOLUTION
    a, b = pair
    out = []
    i, n = 0, len(ids)
    while i < n:
        if ids[i] == a and i + 1 < n and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out
    ### END SOLUTION


def update_pair_counts(
    counts: dict[tuple[int, int], int],
    where: dict[tuple[int, int], set[int]],
    w: int,
    old_ids: list[int],
    new_ids: list[int],
    freq: int,
) -> None:
    """Update ``counts`` and ``where`` in place after word ``w`` changed from old to new ids
    (handout 5.3).

    Subtract ``freq`` for every adjacent pair of ``old_ids``; delete a pair from ``counts``
    (and from ``where``) when its count reaches 0. Then add ``freq`` for every adjacent pair of
    ``new_ids`` and add ``w`` to ``where[pair]``. Other words are not looked at: this is what
    makes training incremental.

    Example: word 1 "hih" (freq 2) with counts ``{(104, 105): 5, (105, 104): 2}`` becomes
    ``[256, 104]`` after merging (104, 105) into 256; the update leaves
    ``counts == {(104, 105): 3, (256, 104): 2}`` and adds ``where[(256, 104)] == {1}``
    (word 0 "hi" is updated by its own call, which removes (104, 105) entirely).
    """
    ### BEGIN SOLUTION
    for pair in pairwise(old_ids):
        left = counts[pair] - freq
        if left:
            counts[pair] = left
        else:
            del counts[pair]
            del where[pair]
    for pair in pairwise(new_ids):
        counts[pair] = counts.get(pair, 0) + freq
        where.setdefault(pair, set()).add(w)
    ### END SOLUTION


def pair_key(count: int, left: bytes, right: bytes) -> tuple[int, bytes, bytes]:
    """How good a pair is to merge next: training merges the pair with the largest key
    (handout 5.3).

    The rule: the most frequent pair wins; among equally frequent pairs, the
    lexicographically greater ``(left, right)`` wins (compare the left bytes, then the right
    bytes; a prefix is smaller, so b"ab" > b"a").

    Examples: ``pair_key(9, b"s", b"t") > pair_key(9, b"e", b"s")`` (tie; b"s" > b"e");
    ``pair_key(9, b"ab", b"c") > pair_key(9, b"a", b"bc")``;
    ``pair_key(10, b"a", b"a") > pair_key(9, b"z", b"z")`` (count first).
    """
    ### BEGIN SOLUTION
    return (count, left, right)
    ### END SOLUTION


class _Candidate:
    """A max-heap entry (heapq pops the smallest, so ``<`` means "larger pair_key")."""

    __slots__ = ("key", "count", "pair")

    def __init__(self, count: int, pair: tuple[int, int], vocab: dict[int, bytes]):
        self.key = pair_key(count, vocab[pair[0]], vocab[pair[1]])
        self.count = count
        self.pair = pair

    def __lt__(self, other: _Candidate) -> bool:
        return self.key > other.key


def train_bpe(
    input_path: str | os.PathLike,
    vocab_size: int,
    special_tokens: Iterable[str] = (),
    workers: int | None = None,
    progress: bool = False,
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """Train a byte-level BPE on a UTF-8 text file.

    The vocabulary starts with the 256 bytes (ids 0..255) and the special tokens (next ids);
    ``vocab_size`` counts everything, so ``vocab_size - 256 - len(special_tokens)`` merges
    are learned (fewer if no pair is left). The text is split on the special tokens, then
    pre-tokenized with the GPT-2 pattern; pairs never cross a pre-token. Each step merges the
    most frequent adjacent pair; ties go to the lexicographically greater
    ``(left_bytes, right_bytes)``. Only the pre-tokens holding the merged pair are updated.

    Args:
        input_path: UTF-8 text file.
        vocab_size: final vocabulary size, at least ``256 + len(special_tokens)``.
        special_tokens: strings kept whole, never merged with their neighbours.
        workers: pre-tokenization processes (default: CPU count) for files over 1 MB.
        progress: show a tqdm bar over the merges.
    Returns:
        ``(vocab, merges)``: ``vocab[id] = bytes``; ``merges[i] = (left, right)`` in order.
    """
    path = Path(input_path)
    if not path.is_file():
        raise FileNotFoundError(f"training file not found: {path}")
    specials = unique_special_tokens(special_tokens)
    if vocab_size < 256 + len(specials):
        raise ValueError(
            f"vocab_size={vocab_size} is too small: it must be at least 256 bytes + "
            f"{len(specials)} special tokens = {256 + len(specials)}"
        )
    vocab = {i: bytes([i]) for i in range(256)}
    for token in specials:
        vocab[len(vocab)] = token.encode("utf-8")

    word_counts = count_file_pretokens(path, specials, workers or os.cpu_count() or 1)
    words = [list(word.encode("utf-8")) for word in word_counts]
    freqs = list(word_counts.values())
    del word_counts
    counts, where = count_pairs(words, freqs)
    # Max-heap by pair_key. An entry goes stale when its pair's count drops; it is corrected
    # when it reaches the top. Counts only rise for new pairs, which are pushed once.
    heap = [_Candidate(c, pair, vocab) for pair, c in counts.items()]
    heapq.heapify(heap)

    merges: list[tuple[bytes, bytes]] = []
    for new_id in tqdm(range(len(vocab), vocab_size), desc="merges", disable=not progress):
        while heap:
            count = counts.get(heap[0].pair, 0)
            if count == heap[0].count:
                break
            if count:
                heapq.heapreplace(heap, _Candidate(count, heap[0].pair, vocab))
            else:
                heapq.heappop(heap)
        else:
            break  # every pre-token is a single token
        pair = heapq.heappop(heap).pair
        a, b = pair
        vocab[new_id] = vocab[a] + vocab[b]
        merges.append((vocab[a], vocab[b]))
        new_pairs = set()
        for w in list(where[pair]):  # a copy: the updates delete where[pair]
            old = words[w]
            new = merge_ids(old, pair, new_id)
            if len(new) == len(old):
                continue  # word lost the pair to an earlier merge; its index entry was stale
            words[w] = new
            update_pair_counts(counts, where, w, old, new, freqs[w])
            new_pairs.update(p for p in pairwise(new) if new_id in p)
        for p in new_pairs:
            heapq.heappush(heap, _Candidate(counts[p], p, vocab))
    return vocab, merges


# ----------------------------------------------------------------------------------------------
# 3. The tokenizer


def encode_word(ids: list[int], ranks: dict[tuple[int, int], tuple[int, int]]) -> list[int]:
    """Apply the merges to the ids of one pre-token, the way GPT-2 does (handout 5.4).

    ``ranks[(a, b)] = (rank, merged_id)`` for every merge; a lower rank was learned earlier.
    Repeat: among the adjacent pairs of ``ids`` that have a rank, take the one with the
    lowest rank and replace all its occurrences (``merge_ids``, left to right) by its merged
    id. Stop when no adjacent pair has a rank. Returns the final ids. (Merging only the
    leftmost occurrence per round gives the same ids: a merge never has a lower rank than
    the merges that made its parts.)

    Example: with ``ranks = {(104, 105): (0, 256), (256, 104): (1, 257)}``,
    ``encode_word([104, 105, 104], ranks)``: the pairs are (104, 105) rank 0 and (105, 104)
    no rank, so merge -> ``[256, 104]``; (256, 104) has rank 1 -> ``[257]``; done.
    ``encode_word([105, 104], ranks) == [105, 104]`` (no pair has a rank).
    """
    ### BEGIN SOLUTION
    ids = list(ids)
    none = (sys.maxsize, -1)  # sorts after every real rank
    rank_of = ranks.get
    found = [rank_of(pair, none) for pair in pairwise(ids)]  # found[i]: ids[i], ids[i + 1]
    while found:
        best = min(found)
        if best is none:
            break
        # Merge the leftmost occurrence; later ones have the lowest rank again next round.
        i = found.index(best)
        merged = ids[i] = best[1]
        del ids[i + 1], found[i]
        if i > 0:
            found[i - 1] = rank_of((ids[i - 1], merged), none)
        if i < len(found):
            found[i] = rank_of((merged, ids[i + 1]), none)
    return ids
    ### END SOLUTION


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte, used in vocab.json and merges.txt.

    Printable Latin-1 bytes stand for themselves; the other 68 bytes (space, control
    characters, ...) map to chr(256), chr(257), ... in order, e.g. b" " -> "Ġ", b"\\n" -> "Ċ".
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    keep += range(ord("®"), ord("ÿ") + 1)
    moved = [b for b in range(256) if b not in keep]
    return {**{b: chr(b) for b in keep}, **{b: chr(256 + i) for i, b in enumerate(moved)}}


_BYTE_TO_CHAR = bytes_to_unicode()
_CHAR_TO_BYTE = {c: b for b, c in _BYTE_TO_CHAR.items()}


def token_bytes(text: str, where: str) -> bytes:
    """The bytes a vocab.json/merges.txt token string stands for; ``where`` names it on error."""
    try:
        return bytes(_CHAR_TO_BYTE[c] for c in text)
    except KeyError as e:
        raise ValueError(
            f"{where}: {text!r} holds {e.args[0]!r}, not a GPT-2 byte character"
        ) from None


class _WordCache(dict):
    """Pre-token -> ids, computed on first use; cleared when it passes ``CACHE_WORDS`` entries."""

    def __init__(self, encode: Callable[[str], list[int]]):
        super().__init__()
        self.encode = encode

    def __missing__(self, word: str) -> list[int]:
        if len(self) >= CACHE_WORDS:
            self.clear()
        ids = self[word] = self.encode(word)
        return ids


class Tokenizer:
    """Byte-level BPE tokenizer: GPT-2 pre-tokenization, merges by rank, special tokens.

    Args:
        vocab: ``id -> bytes``; must hold all 256 single bytes.
        merges: ``(left, right)`` in the order they were learned; both parts and their
            concatenation must be in ``vocab``.
        special_tokens: strings encoded as one id each and never split (longest match first).
            One missing from ``vocab`` gets the next free id.
    """

    def __init__(
        self,
        vocab: dict[int, bytes],
        merges: list[tuple[bytes, bytes]],
        special_tokens: Iterable[str] | None = None,
    ):
        self.vocab = dict(vocab)
        self.merges = list(merges)
        self.special_tokens = unique_special_tokens(special_tokens)
        id_of: dict[bytes, int] = {}
        for i, token in sorted(self.vocab.items()):
            id_of.setdefault(token, i)
        for token in self.special_tokens:
            data = token.encode("utf-8")
            if data not in id_of:
                id_of[data] = max(self.vocab, default=-1) + 1
                self.vocab[id_of[data]] = data
        self.special_ids = {t: id_of[t.encode("utf-8")] for t in self.special_tokens}
        missing = [b for b in range(256) if bytes([b]) not in id_of]
        if missing:
            raise ValueError(
                f"vocab lacks {len(missing)} single bytes, e.g. {bytes([missing[0]])!r}"
            )
        self._byte_ids = [id_of[bytes([b])] for b in range(256)]
        self.ranks: dict[tuple[int, int], tuple[int, int]] = {}
        for rank, (left, right) in enumerate(self.merges):
            absent = [t for t in (left, right, left + right) if t not in id_of]
            if absent:
                raise ValueError(f"merge {rank} {(left, right)!r}: {absent[0]!r} is not in vocab")
            self.ranks.setdefault((id_of[left], id_of[right]), (rank, id_of[left + right]))
        self._special_re = special_pattern(self.special_tokens)
        self._cache = _WordCache(self._encode_pretoken)

    @classmethod
    def from_files(
        cls,
        vocab_path: str | os.PathLike,
        merges_path: str | os.PathLike,
        special_tokens: Iterable[str] | None = None,
    ) -> Tokenizer:
        """Read GPT-2 ``vocab.json`` (token string -> id) and ``merges.txt`` ("left right" per
        line, after an optional ``#version`` header), both in the ``bytes_to_unicode`` alphabet.
        A special token may appear in vocab.json as itself, like ``<|endoftext|>``."""
        vocab_path, merges_path = Path(vocab_path), Path(merges_path)
        for p in (vocab_path, merges_path):
            if not p.is_file():
                raise FileNotFoundError(f"tokenizer file not found: {p}")
        specials = set(special_tokens or ())
        vocab = {}
        for text, i in json.loads(vocab_path.read_text(encoding="utf-8")).items():
            where = f"{vocab_path}: token {i}"
            vocab[i] = text.encode("utf-8") if text in specials else token_bytes(text, where)
        merges = []
        lines = merges_path.read_text(encoding="utf-8").split("\n")
        for n, line in enumerate(lines, start=1):
            if (n == 1 and line.startswith("#version")) or (not line and n == len(lines)):
                continue
            parts = line.split(" ")
            if len(parts) != 2 or not all(parts):
                raise ValueError(
                    f"{merges_path}:{n}: malformed merge line {line!r}: expected two tokens "
                    "separated by one space"
                )
            left, right = (token_bytes(t, f"{merges_path}:{n}") for t in parts)
            merges.append((left, right))
        return cls(vocab, merges, special_tokens)

    @classmethod
    def load(
        cls, directory: str | os.PathLike, special_tokens: Iterable[str] | None = None
    ) -> Tokenizer:
        """Read a folder written by ``save`` (or the GPT-2 files): vocab.json, merges.txt, and
        the special tokens listed in tokenizer_config.json when there is one."""
        directory = Path(directory)
        config = directory / "tokenizer_config.json"
        specials = list(special_tokens or ())
        if config.is_file():
            added = json.loads(config.read_text(encoding="utf-8")).get("added_tokens_decoder", {})
            specials += [t["content"] for t in added.values() if t.get("special")]
        return cls.from_files(directory / "vocab.json", directory / "merges.txt", specials)

    def save(self, directory: str | os.PathLike) -> None:
        """Write vocab.json, merges.txt and tokenizer_config.json (GPT-2 format) to a folder.

        ``transformers.AutoTokenizer.from_pretrained(directory)`` then gives the same ids.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        by_bytes: dict[bytes, int] = {}
        for i, token in sorted(self.vocab.items()):
            if by_bytes.setdefault(token, i) != i:
                raise ValueError(
                    f"ids {by_bytes[token]} and {i} both hold {token!r}: vocab.json needs unique tokens"
                )
        specials = {self.special_ids[t]: t for t in self.special_tokens}
        vocab = {
            specials.get(i) or "".join(map(_BYTE_TO_CHAR.__getitem__, t)): i
            for i, t in sorted(self.vocab.items())
        }
        (directory / "vocab.json").write_text(
            json.dumps(vocab, ensure_ascii=False), encoding="utf-8"
        )
        lines = ["#version: 0.2"] + [
            "".join(map(_BYTE_TO_CHAR.__getitem__, a))
            + " "
            + "".join(map(_BYTE_TO_CHAR.__getitem__, b))
            for a, b in self.merges
        ]
        (directory / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        first = self.special_tokens[0] if self.special_tokens else None
        config = {
            "tokenizer_class": "GPT2Tokenizer",
            "add_prefix_space": False,
            "bos_token": first,
            "eos_token": first,
            "unk_token": first,
            "added_tokens_decoder": {
                str(i): {
                    "content": t,
                    "special": True,
                    "lstrip": False,
                    "rstrip": False,
                    "normalized": False,
                    "single_word": False,
                }
                for i, t in sorted(specials.items())
            },
        }
        (directory / "tokenizer_config.json").write_text(
            json.dumps(config, indent=2), encoding="utf-8"
        )

    def _encode_pretoken(self, word: str) -> list[int]:
        return encode_word([self._byte_ids[b] for b in word.encode("utf-8")], self.ranks)

    def _encode_ordinary(self, text: str) -> list[int]:
        """Ids of text without special tokens: pre-tokenize, then each pre-token (cached)."""
        return list(chain.from_iterable(map(self._cache.__getitem__, pretokenize(text))))

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; special tokens become their single id."""
        if self._special_re is None:
            return self._encode_ordinary(text)
        ids: list[int] = []
        for i, piece in enumerate(self._special_re.split(text)):
            if i % 2:
                ids.append(self.special_ids[piece])
            elif piece:
                ids += self._encode_ordinary(piece)
        return ids

    def encode_iterable(self, iterable: Iterable[str]) -> Iterator[int]:
        """Lazily encode a stream of strings (e.g. a file's lines) as if joined into one text.

        The ids equal ``encode("".join(iterable))``. Text is buffered until about
        ``STREAM_CHARS`` characters have arrived, then encoded up to the last cut that cannot
        change the pre-tokens (non-space followed by whitespace, not inside a special token,
        and at least the longest special token's length before the end of the buffer); the
        rest waits for more text. Memory stays bounded unless the text has no whitespace.
        """
        margin = max(map(len, self.special_tokens), default=0)
        pending: list[str] = []
        size = 0
        for text in iterable:
            pending.append(text)
            size += len(text)
            if size < STREAM_CHARS:
                continue
            buffer = "".join(pending)
            cut = self._stream_cut(buffer, len(buffer) - margin)
            yield from self.encode(buffer[:cut])
            pending, size = [buffer[cut:]], len(buffer) - cut
        yield from self.encode("".join(pending))

    def _stream_cut(self, text: str, limit: int) -> int:
        """The last position ``<= limit`` where ``text`` can be cut without changing its ids."""
        m = _TEXT_CUT.search(text, 0, max(limit, 0))
        cut = m.end() if m else 0
        for special in self._special_re.finditer(text) if self._special_re else ():
            if special.start() >= cut:
                break
            if cut < special.end():
                return special.start()
        return cut

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``; byte sequences that are not valid UTF-8 become U+FFFD."""
        ids = list(ids)
        try:
            data = b"".join(map(self.vocab.__getitem__, ids))
        except (KeyError, TypeError):
            pos, bad = next(
                (k, i) for k, i in enumerate(ids) if not isinstance(i, int) or i not in self.vocab
            )
            raise ValueError(
                f"token id {bad!r} at position {pos} is out of range: ids run from 0 to "
                f"{max(self.vocab)}"
            ) from None
        return data.decode("utf-8", errors="replace")


# ----------------------------------------------------------------------------------------------
# 4. Command line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Train a byte-level BPE tokenizer or encode with one.",
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="learn merges from a UTF-8 text file",
                           formatter_class=HelpFormatter)
    train.add_argument("--input", required=True, help="UTF-8 training text")
    train.add_argument("--vocab-size", type=int, required=True, help="bytes + specials + merges")
    train.add_argument("--special", action="append", default=[], help="special token (repeatable)")
    train.add_argument("--out", required=True, help="folder for vocab.json, merges.txt, config")
    train.add_argument("--workers", type=int, default=None, help="pre-tokenization processes")
    encode = sub.add_parser("encode", help="write the token ids of a text file",
                            formatter_class=HelpFormatter)
    encode.add_argument("--tokenizer", required=True, help="folder with vocab.json and merges.txt")
    encode.add_argument("--special", action="append", default=[], help="extra special token")
    encode.add_argument("--out", default="-", help="output file for the ids (default: stdout)")
    encode.add_argument("file", help="UTF-8 text to encode")
    args = parser.parse_args(argv)

    try:
        if args.command == "train":
            vocab, merges = train_bpe(args.input, args.vocab_size, args.special, args.workers, True)
            Tokenizer(vocab, merges, args.special).save(args.out)
            print(
                f"trained {len(merges)} merges, vocab {len(vocab)}; wrote {args.out}",
                file=sys.stderr,
            )
        else:
            tokenizer = Tokenizer.load(args.tokenizer, args.special)
            path = Path(args.file)
            if not path.is_file():
                raise FileNotFoundError(f"input file not found: {path}")
            out = nullcontext(sys.stdout) if args.out == "-" else open(args.out, "w")  # noqa: SIM115
            with path.open(encoding="utf-8", newline="") as f, out as sink:
                n = 0
                for i in tokenizer.encode_iterable(f):  # one id per line
                    sink.write(f"{i}\n")
                    n += 1
            print(f"encoded {path}: {n} tokens", file=sys.stderr)
    except (FileNotFoundError, ValueError) as e:
        parser.exit(2, f"bpe.py: error: {e}\n")


if __name__ == "__main__":
    main()

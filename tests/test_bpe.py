"""bpe.py training, the Tokenizer on trained vocabularies, file formats, errors, fences.

GPT-2 exactness, property tests and streaming are in test_bpe_gpt2.py.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import bpe
from autograder.fences import find_fences, strip_fences

REPO = Path(__file__).resolve().parents[1]
EOT = "<|endoftext|>"

# Sennrich et al.'s example corpus. GPT-2 pre-tokens: "low" x1, " low" x4, " lower" x2,
# " widest" x3, " newest" x6.
TINY_CORPUS = (
    "low low low low low lower lower widest widest widest newest newest newest newest newest newest"
)
# Worked by hand: pair counts, most frequent first, ties to the greater (left, right) bytes.
TINY_MERGES = [
    (b"s", b"t"),  # (e,s)=9 ties (s,t)=9; "st" > "es" because s > e
    (b"e", b"st"),  # 9
    (b"o", b"w"),  # (l,o)=7 ties (o,w)=7; o > l
    (b"l", b"ow"),  # 7
    (b"w", b"est"),  # 5-way tie at 6: ( ,low) ( ,n) (n,e) (e,w) (w,est); w is the greatest left
    (b"n", b"e"),  # ( ,low) ( ,n) (n,e) (e,west): n is the greatest left
    (b"ne", b"west"),  # ( ,low) ( ,ne) (ne,west)
    (b" ", b"newest"),  # ( ,low) ( ,newest): "newest" > "low"
    (b" ", b"low"),  # 6
    (b"w", b"i"),  # 4-way tie at 3 among " widest" pairs: ( ,w) (w,i) (i,d) (d,est)
    (b"wi", b"d"),
    (b"wid", b"est"),
    (b" ", b"widest"),
    (b"e", b"r"),  # (e,r)=2 ties ( low,e)=2; e > space
    (b" low", b"er"),  # then every pre-token is one token
]


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def naive_train(text: str, vocab_size: int, special_tokens: list[str]) -> list[tuple[bytes, bytes]]:
    """Slow, obviously right BPE: recount every pair after every merge."""
    words = {
        tuple(bytes([b]) for b in w.encode()): c
        for w, c in bpe.count_pretokens(text, special_tokens).items()
    }
    merges: list[tuple[bytes, bytes]] = []
    while len(merges) < vocab_size - 256 - len(special_tokens):
        pairs: Counter[tuple[bytes, bytes]] = Counter()
        for word, count in words.items():
            for pair in zip(word, word[1:], strict=False):
                pairs[pair] += count
        if not pairs:
            break
        best = max(pairs, key=lambda p: (pairs[p], p))
        merges.append(best)
        merged: dict[tuple[bytes, ...], int] = {}
        for word, count in words.items():
            out, i = [], 0
            while i < len(word):
                if word[i : i + 2] == best:
                    out.append(best[0] + best[1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + count
        words = merged
    return merges


# ---------------------------------------------------------------------------------------------
# The fenced helpers, on their docstring examples


def test_count_pairs_docstring_example():
    counts, where = bpe.count_pairs([[104, 105], [104, 105, 104]], [3, 2])
    assert counts == {(104, 105): 5, (105, 104): 2}
    assert where == {(104, 105): {0, 1}, (105, 104): {1}}
    assert bpe.count_pairs([[5, 5, 5]], [1])[0] == {(5, 5): 2}


def test_merge_ids_docstring_examples():
    ids = [1, 2, 3, 1, 2]
    assert bpe.merge_ids(ids, (1, 2), 7) == [7, 3, 7]
    assert ids == [1, 2, 3, 1, 2]
    assert bpe.merge_ids([5, 5, 5], (5, 5), 9) == [9, 5]
    assert bpe.merge_ids([5, 5, 5, 5], (5, 5), 9) == [9, 9]
    assert bpe.merge_ids([4], (4, 4), 9) == [4]
    assert bpe.merge_ids([], (4, 4), 9) == []


def test_update_pair_counts_docstring_example():
    counts, where = bpe.count_pairs([[104, 105], [104, 105, 104]], [3, 2])
    bpe.update_pair_counts(counts, where, 1, [104, 105, 104], [256, 104], 2)
    assert counts == {(104, 105): 3, (256, 104): 2}
    assert where[(256, 104)] == {1}
    bpe.update_pair_counts(counts, where, 0, [104, 105], [256], 3)
    assert counts == {(256, 104): 2}
    assert (104, 105) not in where


def test_pair_key_docstring_examples():
    assert bpe.pair_key(9, b"s", b"t") > bpe.pair_key(9, b"e", b"s")
    assert bpe.pair_key(9, b"ab", b"c") > bpe.pair_key(9, b"a", b"bc")
    assert bpe.pair_key(10, b"a", b"a") > bpe.pair_key(9, b"z", b"z")
    assert bpe.pair_key(3, b" ", b"low") < bpe.pair_key(3, b" ", b"newest")


def test_encode_word_docstring_example():
    ranks = {(104, 105): (0, 256), (256, 104): (1, 257)}
    assert bpe.encode_word([104, 105, 104], ranks) == [257]
    assert bpe.encode_word([105, 104], ranks) == [105, 104]
    assert bpe.encode_word([104], ranks) == [104]
    assert bpe.encode_word([], ranks) == []


# ---------------------------------------------------------------------------------------------
# Training


def test_hand_worked_tiny_corpus(tmp_path):
    vocab, merges = bpe.train_bpe(write(tmp_path / "tiny.txt", TINY_CORPUS), 300, [EOT])
    assert merges == TINY_MERGES  # stops early: no pair is left after 15 merges
    assert len(vocab) == 256 + 1 + len(TINY_MERGES)


def test_vocab_layout(tmp_path, data_dir):
    specials = [EOT, "<|pad|>"]
    vocab, merges = bpe.train_bpe(data_dir / "tinystories" / "sample.txt", 400, specials)
    assert len(vocab) == 400 and len(merges) == 400 - 258
    assert [vocab[i] for i in range(256)] == [bytes([i]) for i in range(256)]
    assert [vocab[256], vocab[257]] == [s.encode() for s in specials]
    for i, (left, right) in enumerate(merges):
        assert vocab[258 + i] == left + right


@pytest.mark.parametrize(
    ("name", "vocab_size", "specials"),
    [("tinystories/sample.txt", 400, [EOT]), ("cs224n/sonnets.txt", 330, [])],
)
def test_matches_naive_recount(data_dir, name, vocab_size, specials):
    """Incremental updates + heap give the merges of a full recount after every merge."""
    path = data_dir / name
    text = path.read_bytes().decode("utf-8")
    assert bpe.train_bpe(path, vocab_size, specials)[1] == naive_train(text, vocab_size, specials)


def test_training_is_incremental(data_dir, monkeypatch):
    """Pairs are counted once; each merge then touches only pre-tokens holding the pair."""
    calls = Counter()
    for name in ("count_pairs", "merge_ids"):
        original = getattr(bpe, name)

        def counted(*args, _name=name, _original=original):
            calls[_name] += 1
            return _original(*args)

        monkeypatch.setattr(bpe, name, counted)
    path = data_dir / "cs224n" / "sonnets.txt"
    n_words = len(bpe.count_pretokens(path.read_bytes().decode("utf-8")))
    vocab, merges = bpe.train_bpe(path, 600, [])
    assert calls["count_pairs"] == 1
    assert calls["merge_ids"] < 0.05 * len(merges) * n_words, (calls, len(merges), n_words)


def test_no_merge_crosses_or_contains_a_special_token(tmp_path):
    text = ("ab<|endoftext|>ab" * 50 + " <|endoftext|> x<|endoftext|>\n") * 20
    vocab, merges = bpe.train_bpe(write(tmp_path / "c.txt", text), 300, [EOT])
    assert merges, "expected some merges"
    for left, right in merges:
        assert not set(b"<|>") & set(left + right), (left, right)


def test_deterministic_and_independent_of_workers(tmp_path, data_dir, monkeypatch):
    """Two runs agree, and 1 worker agrees with 2 workers over many chunks."""
    lines = (data_dir / "wikitext-2" / "valid.txt").read_text(encoding="utf-8").splitlines(True)
    text = "".join(line + (EOT if i % 50 == 0 else "") for i, line in enumerate(lines))
    path = write(tmp_path / "wiki.txt", text)
    monkeypatch.setattr(bpe, "CHUNK_BYTES", 100_000)
    monkeypatch.setattr(bpe, "PARALLEL_MIN_BYTES", 0)
    one = bpe.train_bpe(path, 1000, [EOT], workers=1)
    assert bpe.train_bpe(path, 1000, [EOT], workers=1) == one
    assert bpe.train_bpe(path, 1000, [EOT], workers=2) == one


@pytest.mark.parametrize("specials", [[], [EOT], ["<| sep |>", "<| sep |><| sep |>"]])
def test_chunked_counts_equal_whole_text_counts(tmp_path, data_dir, monkeypatch, specials):
    """Cuts at special tokens and non-space/space boundaries never change the pre-tokens."""
    base = (data_dir / "cs224n" / "sonnets.txt").read_bytes().decode("utf-8")
    text = base.replace(",", "," + specials[0] + "  ") if specials else base
    text += " tail" + (specials[-1] if specials else "")
    path = write(tmp_path / "c.txt", text)
    monkeypatch.setattr(bpe, "CHUNK_BYTES", 997)
    bounds = bpe.find_chunk_boundaries(path, 97, specials)
    assert len(bounds) > 50 and bounds == sorted(set(bounds))
    assert bpe.count_file_pretokens(path, specials, 1) == bpe.count_pretokens(text, specials)


def test_student_style_helpers_give_the_same_merges(tmp_path, data_dir, monkeypatch):
    """Helpers written plainly from their docstrings reproduce the reference merges and ids."""

    def count_pairs(words, freqs):
        counts, where = Counter(), {}
        for w, ids in enumerate(words):
            for pair in zip(ids, ids[1:], strict=False):
                counts[pair] += freqs[w]
                where.setdefault(pair, set()).add(w)
        return dict(counts), where

    def merge_ids(ids, pair, new_id):
        out = list(ids)
        i = 0
        while i < len(out) - 1:
            if (out[i], out[i + 1]) == pair:
                out[i : i + 2] = [new_id]
            i += 1
        return out

    def update_pair_counts(counts, where, w, old_ids, new_ids, freq):
        for pair in zip(old_ids, old_ids[1:], strict=False):
            counts[pair] -= freq
            if counts[pair] == 0:
                del counts[pair]
                del where[pair]
        for pair in zip(new_ids, new_ids[1:], strict=False):
            counts[pair] = counts.get(pair, 0) + freq
            where.setdefault(pair, set()).add(w)

    def pair_key(count, left, right):
        return count, list(left), list(right)

    def encode_word(ids, ranks):
        while len(ids) >= 2:
            pair = min(zip(ids, ids[1:], strict=False), key=lambda p: ranks.get(p, (float("inf"),)))
            if pair not in ranks:
                return ids
            ids = merge_ids(ids, pair, ranks[pair][1])
        return ids

    path = data_dir / "cs224n" / "sonnets.txt"
    text = path.read_bytes().decode("utf-8")
    reference = bpe.train_bpe(path, 600, [EOT])
    expected = bpe.Tokenizer(*reference, [EOT]).encode(text)
    for name, fn in [
        ("count_pairs", count_pairs),
        ("merge_ids", merge_ids),
        ("update_pair_counts", update_pair_counts),
        ("pair_key", pair_key),
        ("encode_word", encode_word),
    ]:
        monkeypatch.setattr(bpe, name, fn)
    assert bpe.train_bpe(path, 600, [EOT]) == reference
    assert bpe.Tokenizer(*reference, [EOT]).encode(text) == expected


# ---------------------------------------------------------------------------------------------
# Tokenizer on a trained vocabulary


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir) -> bpe.Tokenizer:
    vocab, merges = bpe.train_bpe(data_dir / "tinystories" / "sample.txt", 500, [EOT])
    return bpe.Tokenizer(vocab, merges, [EOT])


def test_encode_decode_round_trip(trained, data_dir):
    text = (data_dir / "tinystories" / "sample.txt").read_text(encoding="utf-8")
    ids = trained.encode(text)
    assert len(ids) < len(text.encode()) / 2  # the merges compress their own training text
    assert trained.decode(ids) == text
    assert ids.count(256) == text.count(EOT)


def test_special_tokens_longest_first(trained):
    double = EOT + EOT
    single = bpe.Tokenizer(trained.vocab, trained.merges, [EOT])
    assert single.encode(double) == [256, 256]
    both = bpe.Tokenizer(trained.vocab, trained.merges, [EOT, double])
    assert both.encode(double) == [both.special_ids[double]]
    assert both.encode(double + EOT + "a") == [both.special_ids[double], 256, *both.encode("a")]
    reordered = bpe.Tokenizer(trained.vocab, trained.merges, [double, EOT])
    assert reordered.encode(double * 3) == [reordered.special_ids[double]] * 3
    assert both.decode(both.encode(double + " hi")) == double + " hi"


def test_decode_replaces_invalid_utf8(trained):
    snowman = "☃".encode()
    assert trained.decode([snowman[0], snowman[1]]) == "\ufffd"
    assert trained.decode([104, 0xFF, 105]) == "h\ufffdi"


def test_save_load_and_autotokenizer_round_trip(trained, tmp_path, data_dir):
    from transformers import AutoTokenizer

    trained.save(tmp_path / "tok")
    text = (data_dir / "tinystories" / "sample.txt").read_text(encoding="utf-8")
    text += " naïve 日本 😀\r\n\n  x" + EOT + EOT + "y"
    expected = trained.encode(text)
    reloaded = bpe.Tokenizer.load(tmp_path / "tok")
    assert reloaded.special_tokens == [EOT]
    assert reloaded.vocab == trained.vocab and reloaded.merges == trained.merges
    assert reloaded.encode(text) == expected
    hf = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    assert len(hf) == len(trained.vocab)
    assert hf(text)["input_ids"] == expected
    assert hf.decode(expected) == text


def test_save_without_special_tokens_loads_in_transformers(tmp_path):
    from transformers import AutoTokenizer

    vocab, merges = bpe.train_bpe(write(tmp_path / "t.txt", TINY_CORPUS), 300, [])
    bpe.Tokenizer(vocab, merges).save(tmp_path / "tok")
    hf = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    assert hf(" lower newest")["input_ids"] == bpe.Tokenizer(vocab, merges).encode(" lower newest")
    assert hf(" lower newest")["input_ids"] == [
        256 + TINY_MERGES.index((b" low", b"er")),
        256 + TINY_MERGES.index((b" ", b"newest")),
    ]


def test_merges_file_header_is_optional(trained, tmp_path):
    trained.save(tmp_path / "tok")
    merges = tmp_path / "tok" / "merges.txt"
    merges.write_text(merges.read_text(encoding="utf-8").split("\n", 1)[1], encoding="utf-8")
    again = bpe.Tokenizer.from_files(tmp_path / "tok" / "vocab.json", merges, [EOT])
    assert again.merges == trained.merges


# ---------------------------------------------------------------------------------------------
# Bad input


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        bpe.train_bpe(tmp_path / "nope.txt", 300, [])
    with pytest.raises(FileNotFoundError, match="vocab.json"):
        bpe.Tokenizer.from_files(tmp_path / "vocab.json", tmp_path / "merges.txt")


def test_vocab_size_too_small(tmp_path):
    path = write(tmp_path / "t.txt", "hello")
    with pytest.raises(ValueError, match=r"vocab_size=257 is too small.*256 bytes \+ 2 special"):
        bpe.train_bpe(path, 257, [EOT, "<|pad|>"])
    assert len(bpe.train_bpe(path, 258, [EOT, "<|pad|>"])[0]) == 258


def test_empty_special_token_is_refused(tmp_path, trained):
    with pytest.raises(ValueError, match="special tokens must be non-empty"):
        bpe.train_bpe(write(tmp_path / "t.txt", "hello"), 300, [EOT, ""])
    with pytest.raises(ValueError, match="special tokens must be non-empty"):
        bpe.Tokenizer(trained.vocab, trained.merges, [""])


@pytest.mark.parametrize("workers", [1, 2])
def test_non_utf8_training_file_names_the_byte_offset(tmp_path, monkeypatch, workers):
    monkeypatch.setattr(bpe, "CHUNK_BYTES", 1000)
    monkeypatch.setattr(bpe, "PARALLEL_MIN_BYTES", 0)
    path = tmp_path / "bad.txt"
    path.write_bytes(b"caf\xc3\xa9 ok " * 700 + b"abc \xff def" + b" more text" * 100)
    with pytest.raises(
        ValueError, match=r"bad.txt is not valid UTF-8: byte 0xff at byte offset 6304"
    ):
        bpe.train_bpe(path, 300, [], workers=workers)


def test_malformed_merges_line_names_the_line(trained, tmp_path):
    trained.save(tmp_path / "tok")
    merges = tmp_path / "tok" / "merges.txt"
    lines = merges.read_text(encoding="utf-8").split("\n")
    lines[3] = "Ġthe"  # line 4: one token
    merges.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ValueError, match=r"merges.txt:4: malformed merge line 'Ġthe'"):
        bpe.Tokenizer.load(tmp_path / "tok")
    lines[3] = "a b c"
    merges.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ValueError, match=r"merges.txt:4: malformed"):
        bpe.Tokenizer.load(tmp_path / "tok")


@pytest.mark.parametrize("bad", [500, -1, 10**9, "7"])
def test_decode_out_of_range(trained, bad):
    with pytest.raises(ValueError, match=rf"token id {bad!r} at position 2 is out of range"):
        trained.decode([104, 105, bad, 106])


# ---------------------------------------------------------------------------------------------
# Command line and fences


def test_cli_train_then_encode(tmp_path, data_dir):
    corpus = data_dir / "tinystories" / "sample.txt"
    run = [sys.executable, str(REPO / "bpe.py")]
    done = subprocess.run(
        [
            *run,
            "train",
            "--input",
            str(corpus),
            "--vocab-size",
            "400",
            "--special",
            EOT,
            "--out",
            str(tmp_path / "tok"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "merges" in done.stderr and "100%" in done.stderr  # the tqdm bar
    assert {p.name for p in (tmp_path / "tok").iterdir()} == {
        "vocab.json",
        "merges.txt",
        "tokenizer_config.json",
    }
    subprocess.run(
        [
            *run,
            "encode",
            "--tokenizer",
            str(tmp_path / "tok"),
            str(corpus),
            "--out",
            str(tmp_path / "ids.txt"),
        ],
        check=True,
        capture_output=True,
    )
    ids = [int(x) for x in (tmp_path / "ids.txt").read_text().split()]
    tokenizer = bpe.Tokenizer.load(tmp_path / "tok")
    assert ids == tokenizer.encode(corpus.read_bytes().decode("utf-8"))
    missing = subprocess.run(
        [
            *run,
            "train",
            "--input",
            str(tmp_path / "none.txt"),
            "--vocab-size",
            "300",
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "training file not found" in missing.stderr


def test_fences_strip_to_a_handout_that_imports(tmp_path):
    """Each fence is a whole function body; the stripped file imports and fails clearly."""
    text = (REPO / "bpe.py").read_text()
    names = [f.qualname for f in find_fences("bpe.py", text)]
    assert names == ["count_pairs", "merge_ids", "update_pair_counts", "pair_key", "encode_word"]
    (tmp_path / "bpe.py").write_text(strip_fences("bpe.py", text))
    (tmp_path / "c.txt").write_text("hello hello")
    probe = (
        "import bpe\n"
        "try:\n    bpe.train_bpe('c.txt', 300)\n"
        "except NotImplementedError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "TODO bpe.py count_pairs (handout 5.1)"


TRAIN_PROBE = """
import resource, sys
sys.path.insert(0, sys.argv[1])
import bpe
small = bpe.train_bpe(sys.argv[2], 300, ["<|endoftext|>"], workers=1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
big = bpe.train_bpe(sys.argv[3], 300, ["<|endoftext|>"], workers=1)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(int(small == big), (after - before) * 1024)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
def test_training_memory_does_not_grow_with_the_file(tmp_path, data_dir):
    """Training on 10 copies of a 2.4 MB text peaks within 30 MB of training on one copy
    (holding the 24 MB text and its 5M pre-tokens at once would take several hundred MB)."""
    wiki = b"".join((data_dir / "wikitext-2" / f).read_bytes() for f in ("valid.txt", "test.txt"))
    one, ten = tmp_path / "one.txt", tmp_path / "ten.txt"
    one.write_bytes(wiki + f"{EOT}\n".encode())
    ten.write_bytes((wiki + f"{EOT}\n".encode()) * 10)
    probe = subprocess.run(
        [sys.executable, "-c", TRAIN_PROBE, str(REPO), str(one), str(ten)],
        capture_output=True,
        text=True,
        check=True,
    )
    same, growth = map(int, probe.stdout.split())
    assert same, "ten copies should give the merges of one copy (every count is 10x)"
    assert growth < 30 << 20, f"peak RSS grew by {growth / 2**20:.1f} MiB"

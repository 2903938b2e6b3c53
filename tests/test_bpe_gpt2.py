"""bpe.Tokenizer with the GPT-2 files: the same ids as tiktoken and transformers, round trips
for arbitrary Unicode (hypothesis), and streaming in bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bpe
import reference_tokenizers

REPO = Path(__file__).resolve().parents[1]
EOT = "<|endoftext|>"

EDGE_CASES = [
    "",
    " ",
    "     ",
    "\n",
    "\n\n",
    "\n\n\n",
    "a\n\nb",
    "a \n\n b  ",
    "  \n \n\t\t x \r\n\r\n",
    "\u00a0\u3000 \u2028x",
    "I'm you're they've we'll she'd it's don't CAN'T o'clock ''s",
    "0 7 42 1234567890 3.14159 1,000,000 -5 1e10 ٣٤٥",
    "😀 👍🏽 👨‍👩‍👧 🇫🇷 ❤️",
    "日本語のテキスト 中文字符 한국어",
    "e\u0301 n\u0303 Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇",
    "!!!??? ... --- *** ((x)) [[y]] {z}",
    "Hello<|endoftext|>world<|endoftext|><|endoftext|> <|endoftext|>\n",
    "<|endoftext",
    "Ġ Ċ ĉ ĠĠ",
    "\x00\x01\x7f control \x1b[0m",
]


@pytest.fixture(scope="module")
def gpt2_dir(data_dir: Path) -> Path:
    folder = data_dir / "gpt2-tokenizer"
    if not (folder / "vocab.json").is_file():
        pytest.skip(f"GPT-2 tokenizer files not found in {folder}")
    return folder


@pytest.fixture(scope="module")
def ours(gpt2_dir: Path) -> bpe.Tokenizer:
    return bpe.Tokenizer.from_files(gpt2_dir / "vocab.json", gpt2_dir / "merges.txt", [EOT])


@pytest.fixture(scope="module")
def ours_more_specials(ours: bpe.Tokenizer) -> bpe.Tokenizer:
    """GPT-2 with more special tokens: one made of two end-of-text markers (longest first),
    and one with spaces inside (where a stream could otherwise be cut)."""
    return bpe.Tokenizer(ours.vocab, ours.merges, [EOT, EOT + EOT, "<| sep |>"])


@pytest.fixture(scope="module")
def tiktoken_gpt2(gpt2_dir: Path):
    """tiktoken's GPT-2 encoding built offline from the same vocab.json."""
    return reference_tokenizers.tiktoken_gpt2(gpt2_dir)


@pytest.fixture(scope="module")
def hf_gpt2(gpt2_dir: Path):
    from transformers import GPT2TokenizerFast

    return GPT2TokenizerFast.from_pretrained(str(gpt2_dir))


# Every file of ../shared/data (all UTF-8); one test each, so pytest-xdist spreads them.
DATA_FILES = [
    "README.md",
    "cs224n/TRUE_sonnets_held_out_dev.txt",
    "cs224n/ids-cfimdb-dev.csv",
    "cs224n/ids-cfimdb-test-student.csv",
    "cs224n/ids-cfimdb-train.csv",
    "cs224n/ids-sst-dev.csv",
    "cs224n/ids-sst-test-student.csv",
    "cs224n/ids-sst-train.csv",
    "cs224n/quora-dev.csv",
    "cs224n/sonnets.txt",
    "cs224n/sonnets_held_out.txt",
    "cs224n/sonnets_held_out_dev.txt",
    "gpt2-tokenizer/merges.txt",
    "gpt2-tokenizer/vocab.json",
    "tinystories/sample.txt",
    "wikitext-2/README",
    "wikitext-2/test.txt",
    "wikitext-2/valid.txt",
]


def check_same_ids(ours, tiktoken_gpt2, hf_gpt2, path: Path) -> None:
    text = path.read_bytes().decode("utf-8")  # no newline translation: CRLF stays
    ids = ours.encode(text)
    assert ids == tiktoken_gpt2.encode(text, allowed_special="all"), path
    assert ids == hf_gpt2(text)["input_ids"], path
    assert ours.decode(ids) == text, path


def test_known_ids(ours):
    assert ours.encode("yes") == [8505] and ours.encode(" no") == [645]
    assert ours.encode(EOT) == [50256]
    assert len(ours.vocab) == 50257 and len(ours.merges) == 50000


@pytest.mark.parametrize("text", EDGE_CASES)
def test_edge_cases_match_tiktoken_and_transformers(ours, tiktoken_gpt2, hf_gpt2, text):
    ids = ours.encode(text)
    assert ids == tiktoken_gpt2.encode(text, allowed_special="all")
    assert ids == hf_gpt2(text)["input_ids"]
    assert ours.decode(ids) == text


@pytest.mark.parametrize("name", DATA_FILES)
def test_data_file_matches_tiktoken_and_transformers(ours, tiktoken_gpt2, hf_gpt2, data_dir, name):
    if not (data_dir / name).is_file():
        pytest.skip(f"{name} is not in {data_dir}")
    check_same_ids(ours, tiktoken_gpt2, hf_gpt2, data_dir / name)


def test_data_files_not_listed_above_match_too(ours, tiktoken_gpt2, hf_gpt2, data_dir):
    for path in sorted(data_dir.rglob("*")):
        if path.is_file() and path.relative_to(data_dir).as_posix() not in DATA_FILES:
            check_same_ids(ours, tiktoken_gpt2, hf_gpt2, path)


def test_save_reproduces_the_gpt2_files(ours, gpt2_dir, tmp_path):
    ours.save(tmp_path)
    for name in ("vocab.json", "merges.txt"):
        ours_file, original = tmp_path / name, gpt2_dir / name
        if name == "vocab.json":
            assert json.loads(ours_file.read_text("utf-8")) == json.loads(
                original.read_text("utf-8")
            )
        else:
            assert ours_file.read_text("utf-8").split() == original.read_text("utf-8").split()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_round_trip_arbitrary_unicode(ours, text):
    assert ours.decode(ours.encode(text)) == text


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=100))
def test_arbitrary_text_matches_tiktoken_and_transformers(ours, tiktoken_gpt2, hf_gpt2, text):
    """Any Unicode text, unassigned code points included (a one-off sweep of all 1,112,064
    non-surrogate code points, each inside words, numbers and spaces, agreed with both too)."""
    ids = ours.encode(text)
    assert ids == tiktoken_gpt2.encode(text, allowed_special="all")
    assert ids == hf_gpt2(text)["input_ids"]


# Pieces where the ASCII pattern and GPT-2's `regex` pattern could part: every ASCII
# whitespace class member and the controls \\s leaves out, contractions, and non-ASCII
# letters, digits and spaces on both sides of a cut.
PRETOKEN_PIECES = ["a", "Zq", "9", " ", "  ", "\n", "\r\n", "\t", "\x0b", "\x0c", "\x1c", "\x00",
                   "\x7f", "'s", "'ll", "'", ".", "!?", "é", "日本", "²", "\xa0", "\u3000", "\x85",
                   "\u2028", "🙂", "Ⅻ"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(PRETOKEN_PIECES), max_size=40).map("".join) | st.text(max_size=60))
def test_pretokenize_equals_the_gpt2_regex(text):
    assert bpe.pretokenize(text) == bpe.PRETOKENIZER.findall(text)


def test_pretokenize_equals_the_gpt2_regex_on_the_data_files(data_dir):
    present = [name for name in DATA_FILES if (data_dir / name).is_file()]
    assert present, f"none of {DATA_FILES} is in {data_dir}"
    for name in present:
        text = (data_dir / name).read_bytes().decode("utf-8")
        assert bpe.pretokenize(text) == bpe.PRETOKENIZER.findall(text), name


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "a",
                " ",
                "\n",
                "b ",
                "\t",
                "'s",
                "7",
                "é",
                EOT,
                "<|",
                "endoftext|>",
                "<| sep |>",
                "p |>",
            ]
        ),
        max_size=80,
    ),
    st.lists(st.integers(0, 400), max_size=8),
)
def test_encode_iterable_equals_encode(ours, ours_more_specials, pieces, cuts):
    """Streaming in pieces cut anywhere (even inside a special token) gives the same ids.
    The buffer is flushed every 8 characters, so the cut logic runs often."""
    text = "".join(pieces)
    bounds = sorted({0, len(text), *(min(c, len(text)) for c in cuts)})
    chunks = [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bpe, "STREAM_CHARS", 8)
        for tokenizer in (ours, ours_more_specials):
            assert list(tokenizer.encode_iterable(chunks)) == tokenizer.encode(text)


def test_encode_iterable_over_file_lines(ours, data_dir):
    for name in ("cs224n/sonnets.txt", "tinystories/sample.txt", "wikitext-2/valid.txt"):
        path = data_dir / name
        with path.open(encoding="utf-8", newline="") as f:
            streamed = list(ours.encode_iterable(f))
        assert streamed == ours.encode(path.read_bytes().decode("utf-8")), name


STREAM_PROBE = """
import resource, sys
sys.path.insert(0, sys.argv[1])
import bpe
tok = bpe.Tokenizer.load(sys.argv[2], ["<|endoftext|>"])
with open(sys.argv[3], encoding="utf-8", newline="") as f:
    head = f.read(1 << 20)
tok.encode(head)  # warm the pre-token cache on a first megabyte
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open(sys.argv[3], encoding="utf-8", newline="") as f:
    n = sum(1 for _ in tok.encode_iterable(f))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(n, (after - before) * 1024)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
def test_streaming_memory_does_not_grow_with_the_input(gpt2_dir, data_dir, tmp_path):
    """Stream a 24 MB file through encode_iterable in a fresh process: its peak resident
    memory may grow by at most 40 MB (holding the text or the ids would take 24 MB + ~50 MB)."""
    wiki = (data_dir / "wikitext-2" / "valid.txt").read_bytes() + (
        data_dir / "wikitext-2" / "test.txt"
    ).read_bytes()
    big = tmp_path / "big.txt"
    with big.open("wb") as f:
        for i in range(10):
            f.write(wiki + f"\n{EOT} copy {i}\n".encode())
    probe = subprocess.run(
        [sys.executable, "-c", STREAM_PROBE, str(REPO), str(gpt2_dir), str(big)],
        capture_output=True,
        text=True,
        check=True,
    )
    n_ids, growth = map(int, probe.stdout.split())
    assert n_ids > 10 * 500_000
    assert growth < 40 << 20, f"peak RSS grew by {growth / 2**20:.1f} MiB while streaming"

"""data/prepare_lm.py and training/lm_data.py: the bins, meta.json, the tokenizers, the
sources, and a clear message for each bad input.

Token ids are compared exactly (with Hugging Face's GPT-2 tokenizer for the GPT-2 files,
and with nanoGPT's published split sizes for Tiny Shakespeare)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bpe import Tokenizer
from data.prepare_lm import main as prepare_lm
from training.lm_data import (
    EOT,
    META_KEYS,
    bytes_per_token,
    load_lm_tokenizer,
    load_tokenizer_dir,
    open_split,
    read_meta,
)

TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n"
        "Café — naïve 東京.\n") * 8


def write(path, text: str):
    path.write_text(text, encoding="utf-8", newline="")
    return path


def run(capsys, *argv) -> str:
    """Run prepare_lm expecting a clean error exit; returns its message."""
    with pytest.raises(SystemExit) as exit_info:
        prepare_lm([str(a) for a in argv])
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_bytes_split_meta_and_reading_back(tmp_path):
    source = write(tmp_path / "in.txt", TEXT)
    out = tmp_path / "out"
    meta = prepare_lm(["--input", str(source), "--tokenizer", "bytes", "--out_dir", str(out)])
    cut = int(len(TEXT) * 0.9)  # characters, as nanoGPT's shakespeare_char
    train, val = TEXT[:cut].encode(), TEXT[cut:].encode()
    assert read_meta(out) == meta == json.loads((out / "meta.json").read_text())
    assert set(META_KEYS) <= set(meta)
    assert meta["tokenizer"] == "bytes" and meta["vocab_size"] == 257
    assert meta["eot_token"] == 256 and meta["dtype"] == "uint16"
    assert (meta["train_tokens"], meta["val_tokens"]) == (len(train), len(val))
    assert (meta["train_bytes"], meta["val_bytes"]) == (len(train), len(val))
    assert meta["split"]["kind"] == "fraction" and meta["split"]["val_fraction"] == 0.1
    ids = open_split(out, "train")
    assert isinstance(ids, np.memmap) and ids.dtype == np.uint16
    assert ids.tolist() == list(train) and open_split(out, "val").tolist() == list(val)
    tokenizer = load_lm_tokenizer(out)
    assert tokenizer.eot_token == 256 and tokenizer.vocab_size == 257
    assert tokenizer.decode(ids.tolist()) == TEXT[:cut]
    assert tokenizer.encode("é") == list("é".encode())
    assert tokenizer.encode(f"a{EOT}b") == [97, 256, 98] and tokenizer.decode([256]) == EOT


def test_tiny_shakespeare_matches_nanogpt(data_dir, tmp_path):
    """nanoGPT's READMEs: shakespeare_char 1,003,854 / 111,540 characters; shakespeare
    (GPT-2 BPE) 301,966 / 36,059 tokens."""
    from transformers import GPT2TokenizerFast

    source = data_dir / "tinyshakespeare" / "input.txt"
    chars = prepare_lm(["--input", str(source), "--tokenizer", "bytes", "--out_dir",
                        str(tmp_path / "char")])
    assert (chars["train_tokens"], chars["val_tokens"]) == (1003854, 111540)
    meta = prepare_lm(["--input", str(source), "--tokenizer", "gpt2", "--out_dir",
                       str(tmp_path / "bpe")])
    assert (meta["train_tokens"], meta["val_tokens"]) == (301966, 36059)
    assert meta["vocab_size"] == 50257 and meta["eot_token"] == 50256
    assert bytes_per_token(chars, "val") == 1.0
    assert bytes_per_token(meta, "train") == 1003854 / 301966
    hf = GPT2TokenizerFast.from_pretrained(data_dir / "gpt2-tokenizer")
    text = source.read_text(encoding="utf-8")
    val_text = text[int(len(text) * 0.9):]
    assert open_split(tmp_path / "bpe", "val").tolist() == hf(val_text)["input_ids"]
    assert load_lm_tokenizer(tmp_path / "bpe").encode(EOT) == [50256]


def test_trained_tokenizer_and_explicit_val_file(tmp_path):
    from transformers import GPT2TokenizerFast

    train = write(tmp_path / "train.txt", TEXT + EOT + "Second document.\n")
    val = write(tmp_path / "val.txt", "hear me speak, Citizen.\n")
    out = tmp_path / "out"
    meta = prepare_lm(["--input", str(train), "--val_input", str(val), "--vocab_size", "300",
                       "--out_dir", str(out)])
    assert meta["tokenizer"] == "bpe" and meta["vocab_size"] == 300 and meta["eot_token"] == 256
    assert meta["split"]["kind"] == "separate" and meta["source"]["val_input"] == str(val)
    tokenizer = load_lm_tokenizer(out)
    ids = open_split(out, "train").tolist()
    assert len(ids) < len(TEXT) and 256 in ids  # merges learned; <|endoftext|> is one id
    assert tokenizer.decode(ids) == train.read_text(encoding="utf-8")
    assert meta["val_bytes"] == len(val.read_bytes())
    hf = GPT2TokenizerFast.from_pretrained(out / "tokenizer")  # the saved files are GPT-2's format
    assert open_split(out, "val").tolist() == hf(val.read_text())["input_ids"]


def test_parallel_encoding_equals_one_pass(data_dir, tmp_path, monkeypatch):
    """Pieces cut after a non-space character that whitespace follows, encoded by two
    processes, give the ids of the whole text encoded at once."""
    import data.prepare_lm as prepare_module

    text = (data_dir / "tinystories" / "sample.txt").read_text(encoding="utf-8")
    source = write(tmp_path / "in.txt", text)
    monkeypatch.setattr(prepare_module, "PIECE_CHARS", 97)
    monkeypatch.setattr(prepare_module, "PARALLEL_MIN_CHARS", 0)
    bounds = prepare_module.cut_points(text, 97)
    assert len(bounds) > 20 and bounds[0] == 0 and bounds[-1] == len(text)
    assert all(text[b - 1].strip() and text[b].isspace() for b in bounds[1:-1])
    out = tmp_path / "out"
    prepare_lm(["--input", str(source), "--tokenizer", "gpt2", "--val_fraction", "0.5",
                "--workers", "2", "--out_dir", str(out)])
    tokenizer = load_lm_tokenizer(out)
    cut = int(len(text) * 0.5)
    assert open_split(out, "train").tolist() == tokenizer.encode(text[:cut])
    assert open_split(out, "val").tolist() == tokenizer.encode(text[cut:])


def test_tokenizer_folder(data_dir, tmp_path):
    source = write(tmp_path / "in.txt", TEXT)
    meta = prepare_lm(["--input", str(source), "--tokenizer", str(data_dir / "gpt2-tokenizer"),
                       "--out_dir", str(tmp_path / "out")])
    assert meta["tokenizer"] == "dir" and meta["vocab_size"] == 50257
    assert meta["tokenizer_source"] == str(data_dir / "gpt2-tokenizer")


def test_tokenizer_json_folder(data_dir, tmp_path):
    """A folder that transformers' save_pretrained wrote (tokenizer.json only) encodes as
    Hugging Face does."""
    from transformers import GPT2TokenizerFast

    hf = GPT2TokenizerFast.from_pretrained(data_dir / "gpt2-tokenizer")
    hf.save_pretrained(tmp_path / "hf")
    assert not (tmp_path / "hf" / "vocab.json").exists()
    tokenizer = load_tokenizer_dir(tmp_path / "hf")
    text = TEXT + EOT + " tail"
    assert tokenizer.encode(text) == hf(text)["input_ids"]
    assert tokenizer.eot_token == 50256 and tokenizer.vocab_size == 50257


def test_hugging_face_dataset_saved_to_disk(tmp_path, capsys):
    from datasets import Dataset, DatasetDict

    docs = {"train": ["Once upon a time.", "The end of a tale.", "A third story here."],
            "validation": ["Held out text.", "More of it."]}
    DatasetDict({k: Dataset.from_dict({"story": v}) for k, v in docs.items()}).save_to_disk(
        tmp_path / "ds")
    out = tmp_path / "out"
    meta = prepare_lm(["--hf_dataset", str(tmp_path / "ds"), "--hf_val_split", "validation",
                       "--text_column", "story", "--tokenizer", "bytes", "--out_dir", str(out)])
    def joined(texts: list[str]) -> list[int]:  # documents ended by <|endoftext|>, id 256
        return [*list(texts[0].encode()), *(i for t in texts[1:] for i in [256, *t.encode()])]
    assert open_split(out, "train").tolist() == joined(docs["train"])
    assert open_split(out, "val").tolist() == joined(docs["validation"])
    assert meta["source"]["kind"] == "hf_dataset" and meta["source"]["text_column"] == "story"
    Dataset.from_dict({"text": ["x" * 50, "y" * 50]}).save_to_disk(tmp_path / "one")
    meta = prepare_lm(["--hf_dataset", str(tmp_path / "one"), "--tokenizer", "bytes",
                       "--out_dir", str(tmp_path / "one_out")])
    # 113 characters, 90/10: 50 x, <|endoftext|> (13 characters, 1 token), 38 y; then 12 y
    assert (meta["train_tokens"], meta["val_tokens"]) == (89, 12)
    bad = [(["--text_column", "body"], "has columns ['story'], not 'body'"),
           (["--hf_split", "dev"], "has splits ['train', 'validation'], not 'dev'")]
    for extra, message in bad:
        assert message in run(capsys, "--hf_dataset", tmp_path / "ds", "--tokenizer", "bytes",
                              "--out_dir", tmp_path / "bad", *extra)


def test_bad_inputs(tmp_path, capsys):
    good = write(tmp_path / "good.txt", TEXT)
    (tmp_path / "latin1.txt").write_bytes(b"hello caf\xe9 world")
    big = tmp_path / "big_vocab"
    Tokenizer({**{i: bytes([i]) for i in range(256)}, 70000: b"ab"}, []).save(big)
    out = ["--out_dir", tmp_path / "out"]
    cases = [
        (["--input", tmp_path / "nope.txt", "--tokenizer", "bytes"],
         f"input file not found: {tmp_path / 'nope.txt'}"),
        (["--input", tmp_path / "latin1.txt", "--tokenizer", "bytes"],
         "latin1.txt is not UTF-8 text: byte 0xe9 at byte offset 9"),
        (["--input", good, "--vocab_size", "70000"],
         "a vocabulary of 70,000 tokens; uint16 holds ids 0..65,535 only"),
        (["--input", good, "--tokenizer", big], "a vocabulary of 70,001 tokens"),
        (["--input", good, "--val_input", write(tmp_path / "empty.txt", ""), "--tokenizer",
          "bytes"], "the validation split is empty"),
        (["--input", write(tmp_path / "one.txt", "x"), "--tokenizer", "bytes"],
         "the training split is empty (the first 0.9 of"),
        (["--input", good, "--tokenizer", tmp_path / "no_such_dir"], "no such folder"),
        (["--input", good, "--tokenizer", "gpt2", "--vocab_size", "300"], "drop --tokenizer gpt2"),
        (["--input", good], "pass --tokenizer gpt2|bytes|DIR, or --vocab_size N"),
        (["--input", good, "--tokenizer", "bytes", "--workers", "0"], "--workers must be"),
        (["--input", good, "--tokenizer", "bytes", "--val_fraction", "1"], "--val_fraction must"),
        (["--hf_dataset", tmp_path / "nods", "--val_input", good, "--tokenizer", "bytes"],
         "--val_input goes with --input"),
    ]
    for argv, message in cases:
        assert message in run(capsys, *argv, *out), argv
    assert not (tmp_path / "out" / "meta.json").exists()


def test_reading_errors_say_how_to_prepare(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match="missing not found; make it with `python data/prepare_lm.py"):
        read_meta(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="meta.json not found.*data/prepare_lm.py"):
        read_meta(tmp_path)
    source = write(tmp_path / "in.txt", TEXT)
    out = tmp_path / "out"
    prepare_lm(["--input", str(source), "--tokenizer", "bytes", "--out_dir", str(out)])
    with pytest.raises(ValueError, match=r"split must be one of \['train', 'val'\]"):
        open_split(out, "test")
    (out / "val.bin").write_bytes(b"\x00\x01\x02")
    with pytest.raises(ValueError, match="val.bin holds 3 bytes but meta.json says"):
        open_split(out, "val")
    (out / "train.bin").unlink()
    with pytest.raises(FileNotFoundError, match="train.bin not found; make it with"):
        open_split(out, "train")

"""evaluate_lm.py against transformers' GPT2LMHeadModel on the same weights, and
model_from_checkpoint.

Tolerance: the figures agree with the Hugging Face computation to 1e-5 relative (fp32
forward passes on different kernels, sums in float64)."""

from __future__ import annotations

import dataclasses
import functools
import json
import math

import numpy as np
import pytest
import torch

from data.prepare_lm import main as prepare_lm
from evaluate_lm import main as evaluate_lm
from models.gpt2 import GPT2Model
from training.checkpoint import model_from_checkpoint
from training.perplexity import windows

GPT2_VOCAB = 50257
REL = 1e-5


@pytest.fixture(scope="module")
def text_file(tmp_path_factory, data_dir):
    """About 1,500 characters of Tiny Shakespeare, plus a line of non-ASCII text."""
    text = (data_dir / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")[:1500]
    path = tmp_path_factory.mktemp("text") / "sample.txt"
    path.write_text(text + "Café — naïve 東京\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def hf_folder(make_checkpoint):
    """A random Hugging Face GPT-2 with the GPT-2 vocabulary and a 64-token context."""
    return make_checkpoint(seed=3, vocab_size=GPT2_VOCAB)


@functools.cache
def hf_model_and_tokenizer(folder, tokenizer_dir):
    from transformers import GPT2LMHeadModel, GPT2TokenizerFast

    return (GPT2LMHeadModel.from_pretrained(folder).eval(),
            GPT2TokenizerFast.from_pretrained(tokenizer_dir))


def hf_reference(folder, tokenizer_dir, text: str, block_size: int, stride: int) -> dict:
    """Hugging Face's perplexity recipe with GPT2LMHeadModel's own loss, each new token
    counted once: returns nll_nats, tokens, bytes."""
    model, tokenizer = hf_model_and_tokenizer(folder, tokenizer_dir)
    ids = torch.tensor(tokenizer(text)["input_ids"])
    nll, count, scored, prev_end = 0.0, 0, [], 0
    for begin in range(0, len(ids), stride):
        end = min(begin + block_size, len(ids))
        trg_len = end - prev_end
        input_ids = ids[begin:end][None]
        labels = input_ids.clone()
        labels[:, :-trg_len] = -100
        with torch.no_grad():
            loss = model(input_ids, labels=labels).loss
        n = int((labels[:, 1:] != -100).sum())  # the model shifts the labels by one
        nll += float(loss.double()) * n
        count += n
        scored += labels[0, 1:][labels[0, 1:] != -100].tolist()
        prev_end = end
        if end == len(ids):
            break
    n_bytes = len(tokenizer.decode(scored).encode("utf-8"))
    return {"nll_nats": nll, "tokens": count, "bytes": n_bytes}


def check_against(result: dict, reference: dict) -> None:
    assert result["tokens"] == reference["tokens"]
    assert result["bytes"] == reference["bytes"]
    nll, tokens, n_bytes = reference["nll_nats"], reference["tokens"], reference["bytes"]
    assert result["nll_nats"] == pytest.approx(nll, rel=REL)
    assert result["perplexity"] == pytest.approx(math.exp(nll / tokens), rel=REL)
    assert result["bits_per_token"] == pytest.approx(nll / tokens / math.log(2), rel=REL)
    assert result["bits_per_byte"] == pytest.approx(nll / n_bytes / math.log(2), rel=REL)


def test_windows_score_each_token_once():
    assert windows(10, 6, 3) == [(0, 6, 1), (3, 9, 6), (6, 10, 9)]
    assert windows(11, 6, 6) == [(0, 6, 1), (6, 11, 7)]  # disjoint: a window's first is context
    for n, block, stride in [(50, 8, 3), (7, 16, 5), (33, 8, 7)]:
        scored = [t for _, end, first in windows(n, block, stride) for t in range(first, end)]
        assert scored == list(range(1, n))


@pytest.mark.parametrize("block_size, stride, batch_size", [(32, 12, 8), (64, 64, 3)])
def test_hf_model_equals_transformers(hf_folder, text_file, data_dir, tmp_path, block_size,
                                      stride, batch_size):
    tokenizer_dir = data_dir / "gpt2-tokenizer"
    out = tmp_path / "result.json"
    result = evaluate_lm(["--model", str(hf_folder), "--text", str(text_file), "--tokenizer",
                          str(tokenizer_dir), "--block_size", str(block_size), "--stride",
                          str(stride), "--batch_size", str(batch_size), "--json", str(out)])
    text = text_file.read_text(encoding="utf-8")
    check_against(result, hf_reference(hf_folder, tokenizer_dir, text, block_size, stride))
    assert json.loads(out.read_text()) == result
    assert result["text_bytes"] == len(text.encode("utf-8"))


def test_hf_folder_with_its_own_tokenizer(hf_folder, text_file, data_dir, tmp_path):
    """A folder holding the model and its tokenizer (save_pretrained of both) needs no
    --tokenizer."""
    model, tokenizer = hf_model_and_tokenizer(hf_folder, data_dir / "gpt2-tokenizer")
    model.save_pretrained(tmp_path / "both")
    tokenizer.save_pretrained(tmp_path / "both")
    result = evaluate_lm(["--model", str(tmp_path / "both"), "--text", str(text_file),
                          "--block_size", "40", "--stride", "30"])
    reference = hf_reference(hf_folder, data_dir / "gpt2-tokenizer",
                             text_file.read_text(encoding="utf-8"), 40, 30)
    check_against(result, reference)


def test_our_checkpoint_equals_transformers(hf_folder, text_file, data_dir, tmp_path):
    """A ckpt.pt of ours (with torch.compile's prefixes) scores like the HF model it holds;
    its tokenizer comes from the corpus folder named in the run's config."""
    corpus = tmp_path / "corpus"
    prepare_lm(["--input", str(text_file), "--tokenizer", "gpt2", "--out_dir", str(corpus)])
    ours = GPT2Model.from_pretrained(str(hf_folder))
    checkpoint = {"model": {f"_orig_mod.{k}": v for k, v in ours.state_dict().items()},
                  "model_args": dataclasses.asdict(ours.config), "iter_num": 7,
                  "config": {"data_dir": str(corpus)}}
    torch.save(checkpoint, tmp_path / "ckpt.pt")
    result = evaluate_lm(["--model", str(tmp_path), "--text", str(text_file),
                          "--block_size", "48", "--stride", "20"])
    reference = hf_reference(hf_folder, data_dir / "gpt2-tokenizer",
                             text_file.read_text(encoding="utf-8"), 48, 20)
    check_against(result, reference)


def test_from_checkpoint_round_trip_and_errors(make_checkpoint, tmp_path):
    """Prefixes stripped, weights exact, a numpy RNG state (exact resume) no obstacle."""
    ours = GPT2Model.from_pretrained(str(make_checkpoint(seed=1)))
    args = dataclasses.asdict(ours.config)
    path = tmp_path / "ckpt.pt"
    torch.save({"model": {f"module.{k}": v for k, v in ours.state_dict().items()},
                "model_args": args, "rng": {"numpy": np.random.get_state()}}, path)
    loaded = model_from_checkpoint(path, hidden_dropout_prob=0.0)
    assert loaded.config.hidden_dropout_prob == 0.0
    for name, tensor in ours.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name  # exact copy

    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        model_from_checkpoint(tmp_path / "missing.pt")
    torch.save({"state_dict": {}}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="needs the keys 'model' and 'model_args'"):
        model_from_checkpoint(tmp_path / "bad.pt")
    torch.save({"model": ours.state_dict(), "model_args": {**args, "n_wings": 2}}, path)
    with pytest.raises(ValueError, match=r"fields \['n_wings'\]"):
        model_from_checkpoint(path)
    torch.save({"model": ours.state_dict(), "model_args": {**args, "hidden_size": 64}}, path)
    with pytest.raises(ValueError, match=r"word_embedding.weight has shape \(97, 32\) but "
                                         r"model_args give \(97, 64\)"):
        model_from_checkpoint(path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable torch checkpoint"):
        model_from_checkpoint(tmp_path / "junk.pt")


@pytest.mark.parametrize("extra, message", [
    (["--stride", "40", "--block_size", "32"], "stride must be between 1 and block_size=32"),
    (["--block_size", "65"], "block_size=65 exceeds the model's context 64"),
    (["--stride", "0"], "--stride must be a positive integer"),
])
def test_bad_window_flags(hf_folder, text_file, data_dir, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        evaluate_lm(["--model", str(hf_folder), "--text", str(text_file), "--tokenizer",
                     str(data_dir / "gpt2-tokenizer"), *extra])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("device", ["tpu", "cuda:99"])
def test_a_device_this_machine_lacks_is_refused_naming_it(device, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate_lm(["--model", "gpt2", "--text", "any.txt", "--device", device])
    assert exit_info.value.code == 2
    assert f"argument --device: {device!r} is not a device this machine has (it has cpu" in \
        capsys.readouterr().err


def test_bad_inputs(hf_folder, text_file, data_dir, tmp_path, capsys):
    tokenizer = ["--tokenizer", str(data_dir / "gpt2-tokenizer")]
    one_token = tmp_path / "one.txt"
    one_token.write_text("Hello", encoding="utf-8")
    cases = [
        (["--model", str(hf_folder), "--text", str(tmp_path / "nope.txt")],
         "input file not found"),
        (["--model", str(tmp_path / "no_model"), "--text", str(text_file)],
         "no such checkpoint file or folder"),
        (["--model", str(hf_folder), "--text", str(one_token)], "scoring needs at least 2"),
        (["--model", str(tmp_path / "dpo_run"), "--text", str(text_file)],
         "dpo_run: a folder with no ckpt.pt or best.pt and no config.json; it holds "
         "dpo-sonnet.pt: pass one of them"),
    ]
    (tmp_path / "dpo_run").mkdir()
    (tmp_path / "dpo_run" / "dpo-sonnet.pt").write_bytes(b"")
    for argv, message in cases:
        with pytest.raises(SystemExit):
            evaluate_lm(argv + tokenizer)
        assert message in capsys.readouterr().err

"""pretrain.py end to end on a tiny character-level corpus: its outputs (metrics log with
bits per byte, curves, samples, nanoGPT checkpoints), resume, --init_from a GPT-2 folder,
Weights & Biases offline, and clear messages for bad arguments."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, GenerationConfig

import export_hf
import pretrain
from data import prepare_lm
from training.checkpoint import model_from_checkpoint
from training.metrics import KEYS, read_metrics
from training.pretrain_flags import SAMPLE_PROMPTS

TINY = ["--n_layer", "1", "--n_head", "2", "--n_embd", "32", "--block_size", "32",
        "--batch_size", "4", "--warmup_iters", "2", "--eval_interval", "3", "--eval_iters", "2",
        "--log_interval", "1", "--max_new_tokens", "12"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Character-level (bytes) Tiny Shakespeare, its first 20,000 characters."""
    folder = tmp_path_factory.mktemp("corpus")
    text = folder / "input.txt"
    text.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 300,
                    encoding="utf-8")
    prepare_lm.main(["--input", str(text), "--tokenizer", "bytes", "--out_dir",
                     str(folder / "chars")])
    return folder / "chars"


def test_pretrain_writes_log_curves_samples_checkpoints_and_resumes(corpus, tmp_path,
                                                                     monkeypatch, capsys):
    out = tmp_path / "run"
    monkeypatch.setenv("WANDB_MODE", "offline")
    result = pretrain.main(["--data_dir", str(corpus), "--out_dir", str(out),
                            "--max_iters", "6", "--wandb_log", *TINY])
    assert math.isfinite(result["best"])
    rows = read_metrics(out / "metrics.jsonl")
    assert [row["iter"] for row in rows] == list(range(7))
    assert all(list(row) == list(KEYS) for row in rows)
    for row in rows[::3]:  # evaluations; bytes tokenizer on ASCII: one byte per token
        assert row["perplexity"] == pytest.approx(math.exp(row["val_loss"]), rel=1e-12)
        assert row["bits_per_byte"] == pytest.approx(row["val_loss"] / math.log(2), rel=1e-12)
    assert rows[6]["tokens"] == 6 * 4 * 32
    for name in ("loss.png", "perplexity.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    samples = (out / "samples.txt").read_text(encoding="utf-8")
    assert all(f"--- prompt {p!r}" in samples for p in SAMPLE_PROMPTS)
    assert "# weights: the final state of" in samples and "temperature=0.8" in samples
    assert any((out / "wandb").glob("offline-run-*"))
    state = torch.load(out / "ckpt.pt", weights_only=False)
    assert {"model", "optimizer", "model_args", "iter_num", "best_val_loss",
            "config"} <= set(state)
    assert not any(k.startswith(("module.", "_orig_mod.", "gpt.")) for k in state["model"])
    assert state["iter_num"] == 6 and state["config"]["n_embd"] == 32
    model = model_from_checkpoint(out / "best.pt")
    assert model.config.hidden_size == 32 and model.config.vocab_size == 257  # bytes + EOT
    exported = export_hf.export(out, tmp_path / "hf")  # the corpus's tokenizer goes along
    tokenizer = AutoTokenizer.from_pretrained(exported["out_dir"])
    assert tokenizer.eos_token == "<|endoftext|>" and tokenizer.eos_token_id == 256
    assert GenerationConfig.from_pretrained(exported["out_dir"]).eos_token_id == 256

    resume = ["--data_dir", str(corpus), "--out_dir", str(out), "--init_from", "resume"]
    with pytest.raises(SystemExit, match=r"--max_iters 9 \(the checkpoint has 6\); "
                                         r"--learning_rate 0.002 \(the checkpoint has 0.001\); "
                                         r"drop the flag\(s\), or pass --override"):
        pretrain.main([*resume, "--max_iters", "9", "--learning_rate", "0.002", *TINY])
    assert torch.load(out / "ckpt.pt", weights_only=False)["iter_num"] == 6  # untouched

    pretrain.main([*resume, "--max_iters", "9", "--lr_decay_iters", "6", "--override", *TINY])
    assert "resume with --override: --max_iters 9 (the checkpoint has 6)" in \
        capsys.readouterr().out
    assert [row["iter"] for row in read_metrics(out / "metrics.jsonl")] == list(range(10))
    state = torch.load(out / "ckpt.pt", weights_only=False)
    assert state["iter_num"] == 9 and state["config"]["max_iters"] == 9
    assert state["config"]["lr_decay_iters"] == 6  # not stretched to 9


def test_a_resume_without_flags_takes_the_checkpoints_schedule_and_model(corpus, tmp_path):
    """Only the flags spelled out count as changes: a bare resume of a finished run with
    non-default flags keeps them all (the default --max_iters 2000 would train on), and one
    repeating the same values passes."""
    out = tmp_path / "run"
    flags = ["--data_dir", str(corpus), "--out_dir", str(out), "--num_samples", "0"]
    pretrain.main([*flags, "--max_iters", "3", *TINY])
    pretrain.main([*flags, "--init_from", "resume"])
    state = torch.load(out / "ckpt.pt", weights_only=False)
    assert state["iter_num"] == 3
    assert [row["iter"] for row in read_metrics(out / "metrics.jsonl")] == list(range(4))
    pretrain.main([*flags, "--init_from", "resume", "--max_iters=3", *TINY])
    assert torch.load(out / "ckpt.pt", weights_only=False)["iter_num"] == 3
    with pytest.raises(SystemExit, match=r"do not fit the model of the new flags \(--n_embd "
                                         r"64 \(the checkpoint has 32\)\)"):
        pretrain.main([*flags, "--init_from", "resume", "--n_embd", "64", "--override"])


def test_a_resume_is_checked_with_the_checkpoints_flags_not_the_defaults(corpus, tmp_path,
                                                                         capsys):
    """A run trained with --warmup_iters 2 resumes with only --max_iters given: the
    schedule's check sees the checkpoint's warmup, not the default 100, so without
    --override the refusal names the changed flag, and with it the run trains on with the
    checkpoint's other flags, the change logged."""
    out = tmp_path / "run"
    flags = ["--data_dir", str(corpus), "--out_dir", str(out), "--num_samples", "0"]
    pretrain.main([*flags, "--max_iters", "3", *TINY])
    resume = [*flags, "--init_from", "resume"]
    with pytest.raises(SystemExit, match=r"but --max_iters 60 \(the checkpoint has 3\); drop "
                                         r"the flag\(s\), or pass --override"):
        pretrain.main([*resume, "--max_iters", "60"])
    pretrain.main([*resume, "--max_iters", "5", "--override"])
    assert "resume with --override: --max_iters 5 (the checkpoint has 3)" in \
        capsys.readouterr().out
    state = torch.load(out / "ckpt.pt", weights_only=False)
    assert state["iter_num"] == 5
    assert (state["config"]["max_iters"], state["config"]["warmup_iters"],
            state["config"]["lr_decay_iters"], state["config"]["n_embd"]) == (5, 2, 3, 32)
    with pytest.raises(SystemExit) as exit_info:  # a new value that cannot train still can't
        pretrain.main([*resume, "--max_iters", "7", "--warmup_iters", "4", "--override"])
    assert exit_info.value.code == 2
    assert "--lr_decay_iters 3 must exceed --warmup_iters 4" in capsys.readouterr().err


def test_init_from_a_gpt2_folder_continues_its_weights(corpus, tmp_path, make_checkpoint):
    folder = make_checkpoint(vocab_size=300)
    out = tmp_path / "continued"
    pretrain.main(["--data_dir", str(corpus), "--out_dir", str(out), "--init_from",
                   str(folder), "--max_iters", "3", "--num_samples", "0", *TINY])
    state = torch.load(out / "ckpt.pt", weights_only=False)
    assert state["model_args"]["vocab_size"] == 300
    assert state["model_args"]["num_hidden_layers"] == 2  # the checkpoint's, not --n_layer


@pytest.mark.parametrize("argv, message", [
    (["--max_iters", "0"], "argument --max_iters: 0 is not an integer >= 1"),
    (["--learning_rate", "-1"], "argument --learning_rate: -1 is not a number > 0"),
    (["--dropout", "1"], "argument --dropout: 1 is not a number >= 0 and < 1"),
    (["--n_embd", "100", "--n_head", "3"], "--n_embd 100 is not divisible by --n_head 3"),
    (["--min_lr", "0.1"], "--min_lr 0.1 is above --learning_rate 0.001"),
    (["--warmup_iters", "50", "--max_iters", "40"], "--lr_decay_iters 40 must exceed"),
    (["--init_from", "bert"], "--init_from 'bert': use scratch, resume"),
    (["--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
    (["--compile", "maybe"], "argument --compile: 'maybe' is not True or False"),
    (["--attention_impl", "flash"], "argument --attention_impl: invalid choice"),
])
def test_bad_arguments_are_refused_with_the_flag_and_value(argv, message, capsys):
    with pytest.raises(SystemExit):
        pretrain.get_args(argv)
    assert message in capsys.readouterr().err


def test_compile_without_a_cpp_compiler_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setenv("CXX", "no-such-compiler")
    with pytest.raises(SystemExit):
        pretrain.get_args(["--compile"])
    assert "--compile on the CPU needs a C++ compiler and no-such-compiler" in \
        capsys.readouterr().err


def test_missing_data_and_checkpoint_say_what_to_pass(tmp_path, corpus):
    with pytest.raises(SystemExit, match="prepare_lm.py"):
        pretrain.main(["--data_dir", str(tmp_path / "nowhere")])
    with pytest.raises(SystemExit, match="ckpt.pt not found"):
        pretrain.main(["--data_dir", str(corpus), "--out_dir", str(tmp_path / "empty"),
                       "--init_from", "resume"])
    with pytest.raises(SystemExit, match="fewer than block_size"):
        pretrain.main(["--data_dir", str(corpus), "--out_dir", str(tmp_path / "o"),
                       "--block_size", "5000", "--max_iters", "1", "--warmup_iters", "0"])


def test_research_switches_train_with_z_loss_mu_loss_and_centering(corpus, tmp_path):
    """RoPE, SwiGLU, qk-norm and an untied output train; the log keeps the plain
    cross-entropy beside the regularised loss (the sum of the parts, at rel 1e-6: each is a
    float32 scalar), and mu-centering leaves the output embedding's mean row at zero (atol 1e-6)."""
    out = tmp_path / "research"
    pretrain.main(["--data_dir", str(corpus), "--out_dir", str(out), "--max_iters", "4",
                   "--num_samples", "0", "--position_encoding", "rope", "--mlp", "swiglu",
                   "--qk_norm", "--tie_word_embeddings", "False", "--z_loss", "1e-3",
                   "--mu_loss", "1e-2", "--mu_centering", *TINY])
    rows = [row for row in read_metrics(out / "metrics.jsonl") if row["train_loss"] is not None]
    assert rows and all(list(row)[:len(KEYS)] == list(KEYS) for row in rows)
    for row in rows:
        assert row["train_loss"] == pytest.approx(
            row["train_cross_entropy"] + row["train_z_loss"] + row["train_mu_loss"], rel=1e-6)
        assert row["train_z_loss"] > 0
    model = model_from_checkpoint(out / "ckpt.pt")
    assert model.config.mlp == "swiglu" and not model.config.tie_word_embeddings
    mean_row = model.output_weight.detach().double().mean(dim=0)
    assert float(mean_row.abs().max()) < 1e-6


def test_a_research_option_out_of_range_is_refused_with_its_value(corpus, tmp_path):
    with pytest.raises(SystemExit, match="rotary_fraction"):
        pretrain.main(["--data_dir", str(corpus), "--out_dir", str(tmp_path),
                       "--position_encoding", "rope", "--rotary_fraction", "1.5", *TINY])

"""bench/mfu.py's count (nanoGPT's estimate_mfu formula, both contenders) and bench/gpu.sh's
refusals on a machine without what it needs."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch

from bench import mfu
from config import GPT2Config
from models.gpt2 import GPT2Model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def nanogpt_params(vocab: int, n_layer: int, n_embd: int) -> int:
    """nanoGPT's GPT.get_num_params() with bias: a tied head, no position table."""
    return vocab * n_embd + n_layer * (12 * n_embd ** 2 + 13 * n_embd) + 2 * n_embd


def test_our_run_counts_as_nanogpt_counts(tmp_path):
    config = GPT2Config(vocab_size=97, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=128, max_position_embeddings=16)
    model = GPT2Model(config)
    torch.save({"model": model.state_dict(), "model_args": dataclasses.asdict(config)},
               tmp_path / "ckpt.pt")
    rows = [{"iter": i, "tokens_per_s": rate} for i, rate in enumerate((5.0, 9.0, 100.0, 300.0, 200.0))]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    figures = mfu.main([str(tmp_path), "--peak_tflops", "1e-6"])
    assert figures["params"] == nanogpt_params(97, 2, 32)
    assert figures["tokens_per_s"] == 200.0  # the median after the first two rows
    per_token = 6 * figures["params"] + 12 * 2 * 4 * 8 * 16
    assert figures["mfu"] == pytest.approx(200.0 * per_token / 1e6)


def test_a_nanogpt_log_gives_its_tokens_per_second(tmp_path):
    log = tmp_path / "nano.log"
    log.write_text("number of parameters: 85.00M\nstep 0: train loss 10.9, val loss 10.9\n"
                   + "".join(f"iter {i}: loss 9.0{i}, time {t}ms, mfu 30.00%\n"
                             for i, t in enumerate((9000.0, 500.0, 100.0, 120.0, 110.0))))
    figures = mfu.main(["--nanogpt_log", str(log), "--tokens_per_iter", "12288", "--n_layer",
                        "12", "--n_head", "12", "--n_embd", "768", "--block_size", "1024",
                        "--vocab_size", "50304", "--peak_tflops", "989"])
    assert figures["tokens_per_s"] == pytest.approx(12288 / 0.110)
    assert figures["params"] == nanogpt_params(50304, 12, 768)
    with pytest.raises(SystemExit):
        mfu.main(["--nanogpt_log", str(log), "--tokens_per_iter", "12288"])  # no shape


def test_gpu_script_refuses_a_machine_without_what_it_needs(tmp_path):
    run = lambda *args, **env: subprocess.run(  # noqa: E731
        ["bash", os.path.join(REPO, "bench", "gpu.sh"), *args], capture_output=True, text=True,
        env={**os.environ, **env}, timeout=120)
    result = run(str(tmp_path), PYTHON=sys.executable)
    assert result.returncode == 2 and "holds no nanoGPT train.py" in result.stderr
    nano = tmp_path / "nanoGPT"
    nano.mkdir()
    (nano / "train.py").write_text("")
    (nano / "model.py").write_text("")
    result = run(str(nano), str(tmp_path / "out"), PYTHON=str(tmp_path / "nope"))
    assert result.returncode == 2 and "no Python at" in result.stderr
    if not torch.cuda.is_available():
        result = run(str(nano), str(tmp_path / "out"), PYTHON=sys.executable)
        assert result.returncode == 1 and "needs a CUDA GPU" in result.stderr

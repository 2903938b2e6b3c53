"""The training core (training/): schedule, accumulation, exact resume, atomic checkpoints,
DDP and FSDP2 against one process, a rank that leaves, the metrics log and its plots.

Multi-process runs go through torchrun (gloo on the CPU) with tests/tiny_train.py.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import tiny_train
from training.checkpoint import load_checkpoint
from training.metrics import KEYS, MetricsLog, read_metrics
from training.plots import plot_metrics, plt
from training.schedule import lr_at

DRIVER = str(Path(tiny_train.__file__))


def run_tiny(out: Path, *flags: str) -> dict[str, torch.Tensor]:
    """One in-process tiny run; returns its final weights."""
    tiny_train.main(["--out", str(out), *flags])
    return torch.load(out / "params.pt")


def torchrun(out: Path, *flags: str, timeout: float = 240) -> subprocess.CompletedProcess:
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_addr", "127.0.0.1", "--master_port", str(port), DRIVER,
               "--out", str(out), *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_lr_schedule_at_its_key_steps():
    """Warmup, peak, halfway, floor: nanoGPT's get_lr, exact to 1e-15."""
    lr = dict(learning_rate=1e-3, min_lr=1e-4, warmup_iters=10, lr_decay_iters=110)
    assert lr_at(0, **lr) == pytest.approx(1e-3 / 11, abs=1e-15)
    assert lr_at(9, **lr) == pytest.approx(1e-3 * 10 / 11, abs=1e-15)
    assert lr_at(10, **lr) == pytest.approx(1e-3, abs=1e-15)
    assert lr_at(60, **lr) == pytest.approx(5.5e-4, abs=1e-15)
    assert lr_at(110, **lr) == pytest.approx(1e-4, abs=1e-15)
    assert lr_at(10_000, **lr) == 1e-4
    assert lr_at(5, **lr, decay_lr=False) == 1e-3
    with pytest.raises(ValueError, match="lr_decay_iters"):
        lr_at(0, 1e-3, 1e-4, warmup_iters=10, lr_decay_iters=10)


def test_four_micro_batches_of_two_equal_one_batch_of_eight(tmp_path):
    """Gradient accumulation: the same windows, the same update, to 1e-6 after 3 steps."""
    flags = ("--max_iters", "3", "--eval_interval", "3")
    one = run_tiny(tmp_path / "one", "--batch_size", "8", "--accumulation", "1", *flags)
    four = run_tiny(tmp_path / "four", "--batch_size", "2", "--accumulation", "4", *flags)
    assert max_difference(one, four) < 1e-6


def test_the_progress_bar_shows_the_last_train_and_validation_loss(tmp_path, monkeypatch):
    import training.trainer

    shown = []

    class Bar(training.trainer.tqdm):
        def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
            shown.append(dict(ordered_dict))
            super().set_postfix(ordered_dict, refresh, **kwargs)

    monkeypatch.setattr(training.trainer, "tqdm", Bar)
    run_tiny(tmp_path, "--progress", "--max_iters", "3", "--eval_interval", "2")
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [s["loss"] for s in shown] == [f"{r['train_loss']:.4f}" for r in rows
                                          if r["train_loss"] is not None]
    assert shown == [{"loss": f"{rows[1]['train_loss']:.4f}"},  # step 1: logged, no eval
                     *({"loss": f"{row['train_loss']:.4f}", "val_loss": f"{row['val_loss']:.4f}"}
                       for row in rows[2:])]  # steps 2 and 3 (the last) evaluate


@pytest.mark.parametrize("optimizer", ["adamw", "muon", "shampoo"])
def test_resume_is_exact_bit_for_bit(tmp_path, optimizer):
    """Stopped after step 3 and resumed from ckpt.pt (dropout on, so the random states
    matter; with Muon or Shampoo, their state saved beside AdamW's, Shampoo's inverse roots
    due again at step 5): the same losses, learning rates, norms and final weights, exactly."""
    flags = ("--dropout", "0.1", "--eval_interval", "3", "--optimizer", optimizer)
    whole = run_tiny(tmp_path / "whole", "--max_iters", "6", *flags)
    run_tiny(tmp_path / "split", "--max_iters", "3", *flags)
    resumed = run_tiny(tmp_path / "split", "--max_iters", "6", "--resume", *flags)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    volatile = ("time_s", "tokens_per_s")
    rows = [[{k: v for k, v in row.items() if k not in volatile}
             for row in read_metrics(tmp_path / name / "metrics.jsonl")]
            for name in ("whole", "split")]
    assert rows[0] == rows[1]
    assert [row["iter"] for row in rows[0]] == [0, 1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_compiled_resume_is_exact_and_checkpoints_have_plain_keys(tmp_path):
    """--compile through the Trainer, with the aot_eager backend (dynamo's graph capture and
    AOT autograd as under inductor, without its C++ build, which takes minutes here):
    stopped at step 3 and resumed equals never stopped, bit for bit; the weights equal the
    eager run's to 1e-6 (the same ATen operations); no ``_orig_mod.`` in the checkpoint."""
    flags = ("--dropout", "0.1", "--eval_interval", "3", "--compile_backend", "aot_eager")
    whole = run_tiny(tmp_path / "whole", "--max_iters", "6", *flags)
    run_tiny(tmp_path / "split", "--max_iters", "3", *flags)
    resumed = run_tiny(tmp_path / "split", "--max_iters", "6", "--resume", *flags)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    eager = run_tiny(tmp_path / "eager", "--max_iters", "6", *flags[:-2])
    assert max_difference(whole, eager) < 1e-6
    state = load_checkpoint(tmp_path / "whole" / "ckpt.pt")
    assert set(state["model"]) == set(eager)
    assert not any("_orig_mod" in name for name in state["optimizer"]["state"])


def test_run_killed_while_writing_a_checkpoint_resumes_from_the_previous_one(tmp_path):
    """SIGKILL halfway through the second write of ckpt.pt: the step-2 checkpoint is still
    whole, and resuming from it ends with the weights of a run never stopped (exactly)."""
    out = tmp_path / "killed"
    flags = ("--max_iters", "4", "--eval_interval", "2")
    result = subprocess.run([sys.executable, DRIVER, "--out", str(out), "--die_on_ckpt", "2",
                             *flags], capture_output=True, text=True, timeout=240)
    assert result.returncode == -9, result.stderr
    assert (out / "ckpt.pt.tmp").is_file()  # the torn write
    assert load_checkpoint(out / "ckpt.pt")["iter_num"] == 2
    resumed = run_tiny(out, "--resume", *flags)
    assert [row["iter"] for row in read_metrics(out / "metrics.jsonl")] == [0, 1, 2, 3, 4]
    whole = run_tiny(tmp_path / "whole", *flags)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


TWO_RANKS = ("--batch_size", "4", "--accumulation", "2")  # 2 ranks x 2 micro-batches of 4


@pytest.fixture(scope="module")
def two_rank_runs(tmp_path_factory) -> dict[str, Path]:
    """4 steps of 2 gloo ranks under torchrun (``TWO_RANKS``; ckpt.pt at step 4, and
    ckpt_2.pt kept), with DDP and with FSDP2: their out folders by ``--parallel`` value."""
    runs = {}
    for parallel in ("ddp", "fsdp"):
        runs[parallel] = tmp_path_factory.mktemp(parallel)
        result = torchrun(runs[parallel], *TWO_RANKS, "--parallel", parallel,
                          "--keep_checkpoints", "2")
        assert result.returncode == 0, result.stderr[-3000:]
    return runs


@pytest.mark.slow
def test_ddp_and_fsdp2_on_two_processes_equal_one_process(tmp_path, two_rank_runs):
    """2 ranks x 2 micro-batches of 4 (gloo; no all-reduce on the first) against 1 process
    x 4 micro-batches of 4, the same global batch: DDP's and FSDP2's weights after 4 steps
    equal the single process's to 1e-6.  Checkpoints hold plain keys (no module.)."""
    one = run_tiny(tmp_path / "one", "--batch_size", "4", "--accumulation", "4")
    for parallel, out in two_rank_runs.items():
        assert max_difference(one, torch.load(out / "params.pt")) < 1e-6, parallel
        state = load_checkpoint(out / "ckpt.pt")
        assert state["iter_num"] == 4 and len(state["rng"]) == 2
        assert set(state["model"]) == set(one)


@pytest.mark.slow
def test_fsdp2_resume_is_exact_bit_for_bit(tmp_path, two_rank_runs):
    """2 FSDP2 ranks resumed from the step-2 checkpoint (the whole weights and optimizer
    state, sharded again on load) end as the unstopped run: the same weights and the same
    metrics rows (losses, learning rates, gradient norms), exactly.  The unstopped run kept
    that checkpoint (ckpt_2.pt, the state a run stopped at step 2 leaves in ckpt.pt), so one
    torchrun suffices."""
    whole, out = two_rank_runs["fsdp"], tmp_path / "resumed"
    out.mkdir()
    shutil.copy(whole / "ckpt_2.pt", out / "ckpt.pt")
    shutil.copy(whole / "metrics.jsonl", out / "metrics.jsonl")  # resume drops rows after 2
    result = torchrun(out, *TWO_RANKS, "--parallel", "fsdp", "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = torch.load(out / "params.pt")
    assert all(torch.equal(value, resumed[k]) for k, value in
               torch.load(whole / "params.pt").items())
    volatile = ("time_s", "tokens_per_s")
    rows = [[{k: v for k, v in row.items() if k not in volatile}
             for row in read_metrics(folder / "metrics.jsonl")] for folder in (whole, out)]
    assert rows[0] == rows[1] and [row["iter"] for row in rows[1]] == [0, 1, 2, 3, 4]


@pytest.mark.slow
def test_a_rank_that_leaves_early_ends_every_rank_with_its_name(tmp_path):
    """Rank 1 leaves after one step; rank 0's next collective fails within the 10 s timeout
    and its message names rank 1."""
    result = torchrun(tmp_path / "left", "--exit_rank", "1", "--exit_after", "1",
                      "--timeout", "10", timeout=120)
    assert result.returncode != 0
    assert "rank 0 of 2: a collective operation failed" in result.stderr
    assert "rank 1 left at step 1 (SystemExit)" in result.stderr


def test_metrics_log_keeps_rows_through_the_resumed_step_and_plots(tmp_path, monkeypatch):
    row = dict.fromkeys(KEYS)
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for step in range(5):
        log.write({**row, "iter": step, "train_loss": 3.0 - step / 10,
                   "val_loss": 3.1 - step / 10 if step % 2 == 0 else None})
    MetricsLog(tmp_path / "metrics.jsonl", keep_through=2)
    assert [r["iter"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [0, 1, 2]
    with pytest.raises(ValueError, match="keys"):
        log.write({"iter": 1})
    titles, close = [], plt.close
    monkeypatch.setattr(plt, "close", lambda figure: (
        titles.append(figure.axes[0].get_title()), close(figure)))
    written = plot_metrics(tmp_path / "metrics.jsonl", tmp_path)
    assert [p.name for p in written] == ["loss.png", "perplexity.png"]
    assert titles == [f"{tmp_path.name}: loss (nats per token)", f"{tmp_path.name}: perplexity"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)
    (tmp_path / "bad.jsonl").write_text(json.dumps(row) + "\n{oops\n")
    with pytest.raises(SystemExit, match="bad.jsonl:2"):
        read_metrics(tmp_path / "bad.jsonl")

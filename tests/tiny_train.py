"""A tiny training run through ``training.Trainer``, for the tests: alone, or under torchrun.

    python tests/tiny_train.py --out DIR [--batch_size 8 --accumulation 1 --max_iters 4 ...]
    python -m torch.distributed.run --nproc_per_node 2 tests/tiny_train.py --out DIR ...

The tokens are random (seeded) and held in memory; the model is a 2-layer GPT-2 of width
32.  Rank 0 writes the final weights to ``DIR/params.pt``.  Two hooks simulate failures:
``--die_on_ckpt N`` kills the process (SIGKILL) halfway through its N-th write of
``ckpt.pt``; ``--exit_rank R --exit_after K`` makes rank R leave after K steps.
"""

from __future__ import annotations

import argparse
import os
import signal

import numpy as np
import torch
import torch.nn.functional as F

from config import GPT2Config
from models.gpt2 import GPT2Model
from models.lm import CausalLM
from training import checkpoint, distributed
from training.batches import TokenBatches
from training.trainer import TrainConfig, Trainer

VOCAB, BLOCK = 61, 16


def lm_loss(model, batch):
    logits = model(batch["input_ids"]).float()  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, VOCAB), batch["targets"].reshape(-1))


def die_on_ckpt(n: int) -> None:
    """Replace torch.save in training.checkpoint: the n-th write of ckpt.pt writes a few
    bytes and the process is killed."""
    calls, original = [0], torch.save

    def save(state, f, *args, **kwargs):
        calls[0] += f.name.endswith("ckpt.pt.tmp")
        if f.name.endswith("ckpt.pt.tmp") and calls[0] == n:
            f.write(b"\x80\x02half a checkpoint")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return original(state, f, *args, **kwargs)

    checkpoint.torch.save = save


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--accumulation", type=int, default=1, help="per process")
    parser.add_argument("--max_iters", type=int, default=4)
    parser.add_argument("--lr_decay_iters", type=int, default=8)
    parser.add_argument("--eval_interval", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--parallel", default="ddp")
    parser.add_argument("--optimizer", default="adamw", help="adamw, muon or shampoo")
    parser.add_argument("--compile_backend", default=None, help="torch.compile with it")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--keep_checkpoints", type=int, default=0)
    parser.add_argument("--die_on_ckpt", type=int, default=0)
    parser.add_argument("--exit_rank", type=int, default=-1)
    parser.add_argument("--exit_after", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--progress", action="store_true", help="the tqdm bar")
    args = parser.parse_args(argv)
    if args.die_on_ckpt:
        die_on_ckpt(args.die_on_ckpt)
    info, device = distributed.setup("cpu", args.timeout)
    tokens = np.random.default_rng(0).integers(0, VOCAB, 4000).astype(np.uint16)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=VOCAB, max_position_embeddings=BLOCK, hidden_size=32,
                        num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                        hidden_dropout_prob=args.dropout,
                        attention_probs_dropout_prob=args.dropout)
    model = CausalLM(GPT2Model(config))
    torch.manual_seed(1 + info.rank)
    batches = TokenBatches(tokens[:3000], BLOCK, args.batch_size, args.accumulation, info.rank,
                           info.world_size, seed=5)

    def evaluate(model):
        windows = TokenBatches(tokens[3000:], BLOCK, 4, 2, info.rank, info.world_size, seed=9)
        loss = torch.stack([lm_loss(model, b) for b in windows.next_step()]).mean()
        return {"val_loss": float(distributed.mean_over_ranks(loss.double()))}

    if args.exit_rank == info.rank:
        original = batches.next_step
        steps = [0]

        def next_step():
            steps[0] += 1
            if steps[0] > args.exit_after:
                raise SystemExit(0)  # leaves quietly, as a rank with a bug in its loop would
            return original()
        batches.next_step = next_step

    train = TrainConfig(max_iters=args.max_iters, learning_rate=1e-3, min_lr=1e-4,
                        warmup_iters=2, lr_decay_iters=args.lr_decay_iters,
                        eval_interval=args.eval_interval, log_interval=1,
                        parallel=args.parallel, out_dir=args.out, checkpoint_prefix="gpt.",
                        keep_checkpoints=args.keep_checkpoints,
                        compile=args.compile_backend is not None,
                        compile_backend=args.compile_backend or "inductor", progress=args.progress,
                        optimizer=args.optimizer, shampoo_update_every=2)
    trainer = Trainer(model, train, lm_loss, batches, evaluate, device, info,
                      model_args={"vocab_size": VOCAB})
    resume = checkpoint.load_checkpoint(os.path.join(args.out, "ckpt.pt")) if args.resume else None
    try:
        trainer.run(resume_from=resume)
        final = trainer.checkpoint()
        if info.is_main:
            torch.save(final["model"], os.path.join(args.out, "params.pt"))
    finally:
        distributed.teardown()


if __name__ == "__main__":
    main()

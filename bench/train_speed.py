"""Our training step next to transformers' GPT2LMHeadModel, in one process, on the CPU.

    .venv/bin/python bench/train_speed.py [--steps 30] [--repeats 5] [--threads N] [--data_dir DIR]

Both train the same configuration from the same weights with the same batches and the same
optimizer (our AdamW, weight decay on matrices, clipping at 1.0): ours through the one loop
(``Trainer.train_step``: sampling the batch from the token memmap, forward, loss, backward,
clipping, step), transformers through a hand loop over the same batches.  Default shape:
nanoGPT's Tiny Shakespeare CPU recipe (4 layers, 4 heads, width 128, context 64, batch 12).
Prints tokens per second, the ratio ours / transformers (target >= 1.0) and the share of
our step spent waiting for data (target < 2%).  The runs take turns in every round, so a
change in machine load hits them alike; each figure is the median round.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from transformers import GPT2Config as HFGPT2Config
from transformers import GPT2LMHeadModel
from transformers.utils import logging as hf_logging

from config import GPT2Config
from models.gpt2 import GPT2Model, hf_to_ours
from models.lm import CausalLM
from optimizer import AdamW
from training.args import POSITIVE_INT
from training.batches import TokenBatches
from training.lm_data import open_split
from training.optimizers import param_groups
from training.trainer import TrainConfig, Trainer


def lm_loss(model, batch):
    logits = model(batch["input_ids"]).float()  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=POSITIVE_INT, default=30, help="steps per round")
    parser.add_argument("--repeats", type=POSITIVE_INT, default=5, help="rounds")
    parser.add_argument("--threads", type=POSITIVE_INT, default=torch.get_num_threads())
    parser.add_argument("--data_dir", default=None,
                        help="a prepared corpus (default: random tokens, vocabulary 65)")
    for name, default in (("n_layer", 4), ("n_head", 4), ("n_embd", 128), ("block_size", 64),
                          ("batch_size", 12)):
        parser.add_argument(f"--{name}", type=POSITIVE_INT, default=default)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    tokens = (open_split(args.data_dir, "train") if args.data_dir else
              np.random.default_rng(0).integers(0, 65, 1_000_000).astype(np.uint16))
    vocab = int(tokens.max()) + 1
    config = GPT2Config(vocab_size=vocab, max_position_embeddings=args.block_size,
                        hidden_size=args.n_embd, num_hidden_layers=args.n_layer,
                        num_attention_heads=args.n_head, intermediate_size=4 * args.n_embd,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    hf_model = GPT2LMHeadModel(HFGPT2Config(**config.hf_kwargs()))
    hf_state = {k.removeprefix("transformer."): v for k, v in hf_model.state_dict().items()}

    trainers = {}
    with tempfile.TemporaryDirectory() as out:
        for impl in ("eager", "sdpa"):
            gpt = GPT2Model(GPT2Config(**{**config.__dict__, "attention_impl": impl}))
            gpt.load_state_dict(hf_to_ours(hf_state, config.num_hidden_layers))
            batches = TokenBatches(tokens, args.block_size, args.batch_size, seed=0)
            trainers[f"ours ({impl})"] = Trainer(
                CausalLM(gpt), TrainConfig(max_iters=10**9, out_dir=out, progress=False),
                lm_loss, batches, None)
    hf_optimizer = AdamW(param_groups(hf_model, 0.1), lr=6e-4, betas=(0.9, 0.95), eps=1e-8)
    hf_batches = TokenBatches(tokens, args.block_size, args.batch_size, seed=0)

    def hf_step() -> None:
        (batch,) = hf_batches.next_step()
        logits = hf_model(batch["input_ids"]).logits.float()  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, vocab), batch["targets"].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(hf_model.parameters(), 1.0)
        hf_optimizer.step()
        hf_optimizer.zero_grad(set_to_none=True)

    runs = {name: trainer.train_step for name, trainer in trainers.items()}
    runs["transformers"] = hf_step
    for run in runs.values():
        run()  # warm-up
    for trainer in trainers.values():
        trainer.data_time = trainer.step_time = 0.0
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                run()
            took = time.perf_counter() - start
            seconds[name].append(took)
            if name in trainers:
                trainers[name].step_time += took
    per_step = args.batch_size * args.block_size
    print(f"training step on {torch.get_num_threads()} threads: {args.n_layer} layers, width "
          f"{args.n_embd}, batch {args.batch_size} x {args.block_size}, vocabulary {vocab}, "
          f"median of {args.repeats} rounds of {args.steps} steps")
    hf_rate = per_step * args.steps / statistics.median(seconds["transformers"])
    print(f"{'model':<16} {'ms/step':>8} {'tokens/s':>10} {'vs transformers':>16} "
          f"{'data wait':>10}")
    for name, values in seconds.items():
        took = statistics.median(values) / args.steps
        rate = per_step / took
        wait = (f"{100 * trainers[name].data_time / trainers[name].step_time:.2f}%"
                if name in trainers else "")
        print(f"{name:<16} {1000 * took:>8.1f} {rate:>10,.0f} {rate / hf_rate:>15.2f}x "
              f"{wait:>10}")


if __name__ == "__main__":
    main()

"""LoRA and DPO training steps next to plain fine-tuning, gpt2-small shape, CPU, one process.

    .venv/bin/python bench/lora_dpo_speed.py [--repeats 3] [--threads N]

Every step is forward + backward + AdamW (the kit's `optimizer.AdamW`), dropout 0, on
seeded random tokens: a batch of 4 pairs, each a 32-token prompt with a 96-token chosen
and a 96-token rejected completion, so 8 rows of 128 tokens.  Prints median wall times,
optimizer-state bytes and the ratios:

1. a LoRA step (r 8, alpha 16, query and value, as `apply_lora`'s defaults) against a full
   fine-tuning step, both with the next-token loss over all 8 rows: targets <= 0.75x the
   time and <= 2% of the optimizer-state memory;
2. a DPO step with precomputed reference log-probabilities (`dpo.dpo_step`, full
   fine-tuning) against a plain fine-tuning step on the same pairs (the next-token loss
   over the same 8 rows, so the same tokens): target <= 1.6x.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch

from config import GPT2Config
from dpo import dpo_step, encode_pairs, reference_logprobs, sequence_logprobs
from models.gpt2 import GPT2Model
from modules.lora import apply_lora
from optimizer import AdamW
from training.args import POSITIVE_INT
from training.helpformat import HelpFormatter

PROMPT, COMPLETION, PAIRS = 32, 96, 4


class RandomTokens:
    """A tokenizer stand-in for `encode_pairs`: a text is a space-separated list of ids."""
    eos_token_id = 50256

    def encode(self, text: str) -> list[int]:
        return [int(token) for token in text.split()]


def pair_batch(vocab_size: int) -> dict[str, torch.Tensor]:
    """`encode_pairs` output for PAIRS seeded random pairs: [2 * PAIRS, PROMPT + COMPLETION]."""
    generator = torch.Generator().manual_seed(0)

    def text(length: int) -> str:
        return " ".join(map(str, torch.randint(0, vocab_size - 1, (length,),
                                               generator=generator).tolist()))

    pairs = [argparse.Namespace(id=str(i), prompt=text(PROMPT), chosen=text(COMPLETION - 1),
                                rejected=text(COMPLETION - 1)) for i in range(PAIRS)]
    return encode_pairs(pairs, RandomTokens(), PROMPT + COMPLETION)


def lm_loss(model: GPT2Model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Plain fine-tuning: mean next-token cross-entropy over every real token of every row."""
    mask = batch["attention_mask"]
    total = sequence_logprobs(model, batch["input_ids"], mask, mask).sum()
    return -total / (mask[:, 1:].sum())


def train_step(model: GPT2Model, optimizer: AdamW, loss_of: Callable[[], torch.Tensor]
               ) -> Callable[[], None]:
    def step() -> None:
        loss = loss_of()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


def median_times(runs: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median seconds of each run; they take turns within every round, so a change in
    machine load hits all of them alike.  One warm-up each (it also creates AdamW state)."""
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    return sum(t.numel() * t.element_size() for state in optimizer.state.values()
               for t in state.values() if torch.is_tensor(t))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--repeats", type=POSITIVE_INT, default=3)
    parser.add_argument("--threads", type=POSITIVE_INT, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = GPT2Config.from_preset("gpt2", hidden_dropout_prob=0.0,
                                    attention_probs_dropout_prob=0.0)
    full = GPT2Model(config)
    lora = copy.deepcopy(full)
    apply_lora(lora)
    dpo_model = copy.deepcopy(full)
    batch = pair_batch(config.vocab_size)
    reference = reference_logprobs(dpo_model, None, batch)  # precomputed once
    optimizers = {name: AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
                  for name, model in (("full", full), ("lora", lora), ("dpo", dpo_model))}
    runs = {
        "full fine-tuning": train_step(full, optimizers["full"], lambda: lm_loss(full, batch)),
        "lora": train_step(lora, optimizers["lora"], lambda: lm_loss(lora, batch)),
        "dpo (precomputed reference)": train_step(
            dpo_model, optimizers["dpo"], lambda: dpo_step(dpo_model, batch, reference)[0]),
    }
    print(f"gpt2-small shape, CPU, {torch.get_num_threads()} threads, {PAIRS} pairs = "
          f"{2 * PAIRS} rows x {PROMPT + COMPLETION} tokens, median of {args.repeats}")
    times = median_times(runs, args.repeats)
    for name, seconds in times.items():
        print(f"  {name:28s} {seconds * 1000:8.0f} ms/step")
    memory = {name: state_bytes(opt) for name, opt in optimizers.items()}
    print(f"  optimizer state: full {memory['full'] / 2**20:.1f} MiB, "
          f"lora {memory['lora'] / 2**20:.2f} MiB")
    time_ratio = times["lora"] / times["full fine-tuning"]
    memory_ratio = memory["lora"] / memory["full"]
    dpo_ratio = times["dpo (precomputed reference)"] / times["full fine-tuning"]
    print(f"lora / full time   {time_ratio:.2f}x (target <= 0.75x)")
    print(f"lora / full memory {memory_ratio:.2%} (target <= 2%)")
    print(f"dpo / plain time   {dpo_ratio:.2f}x (target <= 1.6x)")


if __name__ == "__main__":
    main()

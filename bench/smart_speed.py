"""What SMART costs: classifier training steps with its terms next to a plain one, CPU.

    .venv/bin/python bench/smart_speed.py [--repeats 3] [--threads N] [--layers 12]

The gpt2-small shape (random weights, dropout 0; ``--layers`` fewer for a quick run) under
a 2-class head on the last token, a seeded batch of 8 rows of 64 tokens, full fine-tuning.
Every step is the loss, backward and the kit's AdamW; the runs take turns, median of
``--repeats`` rounds:

1. plain: the cross-entropy;
2. smart: + SMART's penalty (``training.smart.Smart``, one ascent step: two more forwards
   and a gradient with respect to the noise);
3. bregman: + the symmetric KL to the mean teacher (one teacher forward without
   gradients, the teacher's moving average after each step);
4. both.

Prints ms/step, each run's time over plain's, and the memory the mean teacher adds (a copy
of the model's weights).  SMART's side of the tradeoff, the dev accuracy it buys, needs a
fine-tuning run on the task (``classifier.py --smart_weight 1 --bregman_weight 1``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from config import GPT2Config
from models.gpt2 import GPT2Model
from optimizer import AdamW
from training.args import POSITIVE_INT
from training.helpformat import HelpFormatter
from training.smart import Smart, add_smart_args

ROWS, TOKENS, CLASSES = 8, 64, 2
RUNS = {"plain": {}, "smart": {"smart_weight": 1.0}, "bregman": {"bregman_weight": 1.0},
        "both": {"smart_weight": 1.0, "bregman_weight": 1.0}}


class LastTokenHead(nn.Module):
    """GPT-2 and a linear head on the last real token's state: [B, T] -> [B, C]."""

    def __init__(self, gpt: GPT2Model):
        super().__init__()
        self.gpt = gpt
        self.head = nn.Linear(gpt.config.hidden_size, CLASSES)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.gpt(input_ids, attention_mask)["last_token"])


def smart_flags(**weights: float) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_smart_args(parser)
    return parser.parse_args([text for key, value in weights.items()
                              for text in (f"--{key}", str(value))])


def make_run(layers: int, weights: dict[str, float]):
    """(one training step, the teacher's parameter bytes) for a fresh seeded model."""
    torch.manual_seed(0)
    config = GPT2Config(num_hidden_layers=layers, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    model = LastTokenHead(GPT2Model(config)).train()
    optimizer = AdamW(model.parameters(), lr=1e-5)
    generator = torch.Generator().manual_seed(1)
    batch = {"input_ids": torch.randint(0, config.vocab_size - 1, (ROWS, TOKENS),
                                        generator=generator),
             "attention_mask": torch.ones(ROWS, TOKENS, dtype=torch.long),
             "labels": torch.randint(0, CLASSES, (ROWS,), generator=generator)}
    smart = Smart(model, smart_flags(**weights)) if weights else None

    def step() -> None:
        if smart is None:
            loss = F.cross_entropy(model(batch["input_ids"], batch["attention_mask"]),
                                   batch["labels"])
        else:
            loss = smart.loss(model, batch)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if smart is not None:
            smart.after_step()

    teacher = smart.teacher.model if smart is not None and smart.teacher else None
    extra = sum(p.numel() * p.element_size() for p in teacher.parameters()) if teacher else 0
    return step, extra


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--repeats", type=POSITIVE_INT, default=3)
    parser.add_argument("--threads", type=POSITIVE_INT, default=None)
    parser.add_argument("--layers", type=POSITIVE_INT, default=12)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = {name: make_run(args.layers, weights) for name, weights in RUNS.items()}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for step, _ in runs.values():  # warm-up
        step()
    for _ in range(args.repeats):
        for name, (step, _) in runs.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"{args.layers} layers, {ROWS} rows x {TOKENS} tokens, {torch.get_num_threads()} "
          f"threads, median of {args.repeats}")
    print("| run | ms/step | / plain | teacher memory |\n| --- | --- | --- | --- |")
    for name, median in medians.items():
        extra = runs[name][1]
        print(f"| {name} | {median * 1e3:,.0f} | {median / medians['plain']:.2f}x | "
              f"{extra / 2 ** 20:,.1f} MiB |")


if __name__ == "__main__":
    main()

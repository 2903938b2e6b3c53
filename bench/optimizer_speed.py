"""Our AdamW step next to torch.optim.AdamW's, per tensor and with foreach kernels, on the CPU.

    .venv/bin/python bench/optimizer_speed.py [--repeats 50] [--threads 1] [--shape recipe]

Each optimizer steps the parameters of its own copy of the same GPT-2 (the same gradients,
weight decay on matrices, lr 6e-4, betas (0.9, 0.95), eps 1e-8): ours (`optimizer.AdamW`,
a loop over the tensors), torch.optim.AdamW as the CPU runs it by default (`foreach=False`,
a loop too) and with `foreach=True` (each operation over all the tensors of a group at
once, as on a GPU).  The steps take turns in every round; the figure is the median step in
CPU time of this process.  Shapes: "recipe" is nanoGPT's Tiny Shakespeare CPU model
(4 layers, width 128, vocabulary 65, 0.8M parameters); "mid" 6 layers of width 384 with
GPT-2's vocabulary (30M parameters).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from config import GPT2Config
from models.gpt2 import GPT2Model
from optimizer import AdamW
from training.args import POSITIVE_INT
from training.helpformat import HelpFormatter
from training.optimizers import param_groups

SHAPES = {
    "recipe": dict(vocab_size=65, max_position_embeddings=64, hidden_size=128,
                   num_hidden_layers=4, num_attention_heads=4),
    "mid": dict(vocab_size=50257, max_position_embeddings=256, hidden_size=384,
                num_hidden_layers=6, num_attention_heads=6),
}
OPTIMIZERS = {
    "ours": AdamW,
    "torch.optim.AdamW (CPU default)": torch.optim.AdamW,
    "torch.optim.AdamW foreach=True": lambda groups, **kw: torch.optim.AdamW(
        groups, foreach=True, **kw),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--repeats", type=POSITIVE_INT, default=50)
    parser.add_argument("--threads", type=POSITIVE_INT, default=1)
    parser.add_argument("--shape", choices=list(SHAPES), default="recipe")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = {}
    for name, make in OPTIMIZERS.items():
        torch.manual_seed(0)
        model = GPT2Model(GPT2Config(**SHAPES[args.shape]))
        for parameter in model.parameters():
            parameter.grad = torch.randn_like(parameter) * 1e-3
        steps[name] = make(param_groups(model, 0.1), lr=6e-4, betas=(0.9, 0.95),
                           eps=1e-8).step
    for step in steps.values():
        step()  # the state is created
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            start = time.process_time()
            step()
            seconds[name].append(time.process_time() - start)
    ours = statistics.median(seconds["ours"])
    print(f"AdamW step, shape {args.shape}, {args.threads} thread(s), median of "
          f"{args.repeats} (CPU time)")
    for name, values in seconds.items():
        took = statistics.median(values)
        print(f"{name:<34} {1000 * took:8.2f} ms   ours / this {ours / took:.2f}")


if __name__ == "__main__":
    main()

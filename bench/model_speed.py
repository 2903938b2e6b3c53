"""Our GPT-2 next to transformers' GPT-2 on the same weights, in one process.

    .venv/bin/python bench/model_speed.py [--repeats 10] [--threads N]

Prints median wall times and the ratio ours / transformers (lower is better) for
1. forward in eval, fp32, gpt2-small shape, batch 8 x 128 (no grad);
2. forward + backward in train mode (dropout 0) at a smaller shape (6 layers, width 384,
   batch 8 x 64).
Both our attention paths are timed: eager (the handout's) and sdpa (the fast path).
Targets: sdpa ratio <= 1.0, eager ratio <= 1.5.  transformers runs with its default
attention implementation (sdpa).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from transformers import GPT2Model as HFGPT2Model
from transformers.utils import logging as hf_logging

from config import GPT2Config
from models.gpt2 import GPT2Model
from training.args import POSITIVE_INT
from training.helpformat import HelpFormatter
from utils import save_random_hf_checkpoint


def median_times(runs: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each callable; the runs take turns within every round, so a change
    in machine load hits all of them alike."""
    for run in runs.values():
        run()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def run_case(title: str, config: GPT2Config, batch: int, seq_len: int, train: bool,
             repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = save_random_hf_checkpoint(tmp, config, seed=0)
        overrides = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        models = {
            "ours eager": GPT2Model.from_pretrained(str(path), **overrides),
            "ours sdpa": GPT2Model.from_pretrained(str(path), attention_impl="sdpa", **overrides),
            "transformers": HFGPT2Model.from_pretrained(path, resid_pdrop=0.0, embd_pdrop=0.0,
                                                        attn_pdrop=0.0),
        }
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, config.vocab_size, (batch, seq_len), generator=generator)
    mask = torch.ones_like(input_ids)

    def step(name: str, model: torch.nn.Module):
        def run():
            if name == "transformers":
                hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
            else:
                hidden = model(input_ids, mask)["last_hidden_state"]
            if train:
                model.zero_grad(set_to_none=True)
                hidden.square().mean().backward()
        return run

    for model in models.values():
        model.train(train)
    with torch.set_grad_enabled(train):
        times = median_times({name: step(name, model) for name, model in models.items()},
                             repeats)
    print(f"\n{title}")
    for name, seconds in times.items():
        print(f"  {name:13s} {seconds * 1000:8.1f} ms   ratio vs transformers "
              f"{seconds / times['transformers']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--repeats", type=POSITIVE_INT, default=10)
    parser.add_argument("--threads", type=POSITIVE_INT, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats}")
    run_case("forward, eval, fp32, gpt2-small shape, batch 8 x 128",
             GPT2Config.from_preset("gpt2"), 8, 128, train=False, repeats=args.repeats)
    run_case("forward + backward, train, fp32, 6 layers x 384 wide, batch 8 x 64",
             GPT2Config(num_hidden_layers=6, num_attention_heads=6, hidden_size=384,
                        intermediate_size=1536), 8, 64, train=True, repeats=args.repeats)


if __name__ == "__main__":
    main()

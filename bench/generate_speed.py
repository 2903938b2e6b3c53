"""Greedy generation speed on the CPU: our KV cache vs no cache vs transformers' generate().

    python bench/generate_speed.py                       # gpt2 (124M) shape, random weights
    python bench/generate_speed.py --model_path DIR      # a real checkpoint folder

All three run the same weights (one Hugging Face checkpoint folder loaded twice), greedy,
exactly --new_tokens new tokens (no EOS stop) after the same prompt, batch size 1, taking
turns in each round (best of --repeats), so that a shared machine's load hits all three
alike.  The token sequences are checked to be identical.  Targets: the cache is >= 5x faster than no
cache, and no slower than transformers.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from config import GPT2Config
from models.generate import generate
from models.gpt2 import GPT2Model
from training.args import POSITIVE_INT
from training.helpformat import HelpFormatter
from utils import save_random_hf_checkpoint


def best_time(fn, repeats: int) -> tuple[float, list[int]]:
    """Fastest wall time of `repeats` calls, and the last call's tokens."""
    best, tokens = float("inf"), []
    for _ in range(repeats):
        start = time.perf_counter()
        tokens = fn()
        best = min(best, time.perf_counter() - start)
    return best, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--model_size", default="gpt2", choices=["gpt2", "gpt2-medium"],
                        help="shape of the random checkpoint (without --model_path)")
    parser.add_argument("--model_path", default=None, help="Hugging Face checkpoint folder")
    parser.add_argument("--new_tokens", type=POSITIVE_INT, default=128)
    parser.add_argument("--prompt_tokens", type=POSITIVE_INT, default=35,
                        help="the held-out sonnet prompts are 31-42 tokens")
    parser.add_argument("--batch", type=POSITIVE_INT, default=1,
                        help="prompts generated together (the 12 held-out sonnets: --batch 12)")
    parser.add_argument("--repeats", type=POSITIVE_INT, default=2,
                        help="best of N rounds; each round runs all three in turn")
    parser.add_argument("--sdpa", action="store_true", help="our model with attention_impl=sdpa")
    parser.add_argument("--threads", type=POSITIVE_INT, default=None,
                        help="torch.set_num_threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers import GPT2LMHeadModel

    with tempfile.TemporaryDirectory() as tmp:
        path = args.model_path or str(save_random_hf_checkpoint(
            tmp, GPT2Config.from_preset(args.model_size), seed=0))
        impl = "sdpa" if args.sdpa else "eager"
        ours = GPT2Model.from_pretrained(path, attention_impl=impl).eval()
        hf = GPT2LMHeadModel.from_pretrained(path).eval()
    prompts = torch.randint(0, ours.config.vocab_size, (args.batch, args.prompt_tokens),
                            generator=torch.Generator().manual_seed(0)).tolist()
    n = args.new_tokens
    print(f"[bench] {args.model_path or args.model_size + ' (random weights)'}, "
          f"{ours.num_parameters() / 1e6:.0f}M parameters, attention {impl}, "
          f"{torch.get_num_threads()} threads; {args.batch} prompt(s) of {args.prompt_tokens} "
          f"tokens, {n} new each, greedy")

    def run_ours(use_cache: bool) -> list[list[int]]:
        return generate(ours, prompts, n, eos_id=None, use_cache=use_cache)

    @torch.no_grad()
    def run_hf() -> list[list[int]]:
        ids = torch.tensor(prompts)
        out = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n,
                          min_new_tokens=n, do_sample=False, pad_token_id=0)
        return out[:, args.prompt_tokens:].tolist()

    generate(ours, prompts, 4, eos_id=None)  # warm-up (allocator, threads)
    run_hf()
    runs = {"ours, KV cache": lambda: run_ours(True), "transformers": run_hf,
            "ours, no cache": lambda: run_ours(False)}
    best = {name: float("inf") for name in runs}
    tokens = {}
    for _ in range(args.repeats):  # take turns, so that all three see the same machine load
        for name, run in runs.items():
            seconds, tokens[name] = best_time(run, 1)
            best[name] = min(best[name], seconds)
    for name, seconds in best.items():
        print(f"[bench] {name + ':':18} {seconds:7.2f} s  {args.batch * n / seconds:7.1f} tokens/s")
    cached, reference, uncached = best.values()
    cached_tokens, hf_tokens, uncached_tokens = tokens.values()
    same = cached_tokens == uncached_tokens == hf_tokens
    print(f"[bench] identical tokens (cache, no cache, transformers): {same}")
    print(f"[bench] cache vs no cache: {uncached / cached:.1f}x faster (target >= 5x); "
          f"cache vs transformers: {reference / cached:.2f}x (target >= 1x)")


if __name__ == "__main__":
    main()

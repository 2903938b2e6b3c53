"""Tokens per second and model FLOPs utilisation (MFU) of a training run, ours or nanoGPT's.

    python bench/mfu.py out/gpu-bench/small                      # a pretrain.py out_dir
    python bench/mfu.py --nanogpt_log nano.log --tokens_per_iter 12288 \\
        --n_layer 12 --n_head 12 --n_embd 768 --block_size 1024 --vocab_size 50304

FLOPs per token are PaLM's estimate (Chowdhery et al., appendix B), as nanoGPT's
`estimate_mfu` counts them: 6 N + 12 L H Q T for N parameters without the position table,
L layers, H heads of width Q and context T.  MFU = tokens/s x FLOPs per token / the GPU's
peak dense bfloat16 FLOP/s (`--peak_tflops`, else looked up from the GPU's name).  Both
contenders are counted by this one formula.  Tokens/s is the median over the logged rows
after the first `--skip` (compilation and warm-up): our `metrics.jsonl` rows' `tokens_per_s`,
or nanoGPT's printed `time ...ms` per iteration with `--tokens_per_iter`.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path

from training.args import POSITIVE_INT
from training.helpformat import HelpFormatter

PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0,
                    "A10": 125.0, "RTX 4090": 165.0}  # dense, no sparsity


def flops_per_token(params: int, n_layer: int, n_head: int, n_embd: int, block_size: int) -> int:
    """6 N + 12 L H Q T (nanoGPT's estimate_mfu; Q = n_embd / n_head)."""
    return 6 * params + 12 * n_layer * n_head * (n_embd // n_head) * block_size


def peak_tflops(given: float | None) -> tuple[float, str]:
    """The GPU's peak dense bf16 TFLOP/s and its name; exits when it cannot be found."""
    import torch

    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    if given:
        return given, name
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in name:
            return value, name
    raise SystemExit(f"no peak FLOP/s known for {name!r}: pass --peak_tflops")


def ours(out_dir: Path, skip: int) -> dict:
    """Tokens/s and the model's shape of a pretrain.py run in `out_dir`."""
    from training.checkpoint import model_from_checkpoint
    from training.metrics import read_metrics

    rates = [row["tokens_per_s"] for row in read_metrics(out_dir / "metrics.jsonl")
             if row.get("tokens_per_s")][skip:]
    if not rates:
        raise SystemExit(f"{out_dir}/metrics.jsonl: no tokens_per_s rows after the first {skip}")
    model = model_from_checkpoint(out_dir / "ckpt.pt")
    params = sum(p.numel() for name, p in model.named_parameters()  # a tied head once
                 if not name.startswith("pos_embedding"))
    config = model.config
    return {"tokens_per_s": statistics.median(rates), "params": params,
            "n_layer": config.num_hidden_layers, "n_head": config.num_attention_heads,
            "n_embd": config.hidden_size, "block_size": config.max_position_embeddings}


def nanogpt(log: Path, tokens_per_iter: int, skip: int) -> float:
    """Median tokens/s from nanoGPT's `iter N: loss L, time T ms, mfu M%` lines."""
    times = [float(t) for t in re.findall(r"^iter \d+: loss [\d.]+, time ([\d.]+)ms",
                                          log.read_text(encoding="utf-8"), re.M)][skip:]
    if not times:
        raise SystemExit(f"{log}: no nanoGPT `iter N: ... time T ms` lines after the first {skip}")
    return tokens_per_iter / (statistics.median(times) / 1000)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("out_dir", nargs="?", type=Path, help="a pretrain.py out_dir")
    parser.add_argument("--nanogpt_log", type=Path, help="the output of nanoGPT's train.py")
    parser.add_argument("--tokens_per_iter", type=POSITIVE_INT,
                        help="nanoGPT: batch x block x accumulation x processes")
    for name in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size"):
        parser.add_argument(f"--{name}", type=POSITIVE_INT, help="nanoGPT's model shape")
    parser.add_argument("--skip", type=int, default=2, help="logged rows left out first")
    parser.add_argument("--peak_tflops", type=float, default=None,
                        help="the GPU's peak dense bf16 TFLOP/s (default: by its name)")
    args = parser.parse_args(argv)
    if (args.out_dir is None) == (args.nanogpt_log is None):
        parser.error("give a pretrain.py out_dir or --nanogpt_log, one of them")
    if args.out_dir is not None:
        figures = ours(args.out_dir, args.skip)
    else:
        shape = ("n_layer", "n_head", "n_embd", "block_size", "vocab_size", "tokens_per_iter")
        missing = [f"--{name}" for name in shape if getattr(args, name) is None]
        if missing:
            parser.error(f"--nanogpt_log needs {' '.join(missing)}")
        E, L = args.n_embd, args.n_layer  # nanoGPT's get_num_params(): tied head, no wpe
        params = args.vocab_size * E + L * (12 * E * E + 13 * E) + 2 * E
        figures = {"tokens_per_s": nanogpt(args.nanogpt_log, args.tokens_per_iter, args.skip),
                   "params": params, "n_layer": L, "n_head": args.n_head, "n_embd": E,
                   "block_size": args.block_size}
    peak, gpu = peak_tflops(args.peak_tflops)
    per_token = flops_per_token(figures["params"], figures["n_layer"], figures["n_head"],
                                figures["n_embd"], figures["block_size"])
    figures["mfu"] = figures["tokens_per_s"] * per_token / (peak * 1e12)
    figures["gpu"] = gpu
    print(f"{figures['tokens_per_s']:,.0f} tokens/s, {figures['params'] / 1e6:.1f}M parameters, "
          f"MFU {figures['mfu']:.1%} of {peak:.0f} TFLOP/s ({gpu})")
    return figures


if __name__ == "__main__":
    sys.exit(0 if main() else 1)

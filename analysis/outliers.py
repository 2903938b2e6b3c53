"""Massive activations and attention sinks of a trained model (handout 9).

The method of the systematic-outliers study (after Sun et al., "Massive activations in large
language models", 2024): run N random windows of T tokens of a corpus through the model, and
for every block output (the residual stream after each `GPT2Layer`, `gpt_layers.i` for
layer i = 0 .. L-1; the final LayerNorm is not a block) take the magnitudes |h| of all
T x D entries of one window, their largest three and their median; average each over the
windows.  Beside them:

- where the largest one sits: over all windows, the window, position, channel and token of
  the single largest |h| of each layer, and the position and channel that hold each
  window's top-1 most often (massive activations sit at fixed channels, usually on the
  first token or a delimiter);
- attention sinks: the attention weight that each query gives the first position of its
  window, averaged over heads, queries (all of them, query 0 included) and windows.  For
  the variants with an extra key k' (`attn_bias`, `cabias`) the weight on k' is reported
  too, `bias_key_attention`.

The attention weights are read with a forward hook on each layer's `self_attention.dropout`:
the eager `attention` applies that dropout to the probabilities, so in eval mode (dropout is
the identity) its input is exactly softmax(S) [B, H, T_q, T_k].  The model is therefore loaded
with `attention_impl="eager"` (the fused kernel returns no probabilities); nothing in the
model changes.  Each variant's `read_sinks` (`modules.attention_variants.Variant`) says which
captured tensor holds what.

Command line (writes outliers.json, outliers.csv and the PNGs of `analysis.plots`)::

    python -m analysis.outliers --model out/softmax/ckpt.pt --model out/attn_bias/ckpt.pt \\
        --data_dir data/shakespeare_char --windows 100 --block_size 256 --seed 0 \\
        --out_dir analysis_out
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from models.gpt2 import GPT2Model
from modules.attention_variants import attention_variant
from training.checkpoint import model_from_checkpoint
from training.helpformat import HelpFormatter
from training.lm_data import (
    LMTokenizer,
    gpt2_tokenizer_dir,
    load_lm_tokenizer,
    load_tokenizer_dir,
    open_split,
    read_text,
)

CSV_KEYS = ("model", "layer", "top1", "top2", "top3", "median", "first_position_attention",
            "bias_key_attention", "largest_value", "largest_window", "largest_position", "largest_channel",
            "largest_token_id", "largest_token", "top1_position_mode", "top1_channel_mode")
DEFAULT_PROMPT = "Summer is warm. Winter is cold.\n"


@torch.no_grad()
def capture(model: GPT2Model, input_ids: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Run input_ids [B, T] (no padding, on the model's device) through `model` (eval, eager
    attention) and return
    (block outputs [L, B, T, D], attention on the first position [L, B, H, T], attention
    on k' [L, B, H, T] or None for variants without k')."""
    if model.config.attention_impl != "eager" or model.training:
        raise ValueError("capture needs the model in eval mode with attention_impl='eager' "
                         f"(got attention_impl={model.config.attention_impl!r}, "
                         f"training={model.training}); load it with `load_model`")
    outputs: list[torch.Tensor] = []
    calls: list[list[torch.Tensor]] = [[] for _ in model.gpt_layers]
    hooks = []
    for index, layer in enumerate(model.gpt_layers):
        hooks.append(layer.register_forward_hook(
            lambda module, args, output: outputs.append(output)))
        # only the weights on the first two keys are kept (all that read_sinks reads),
        # not the [B, H, T, T] probabilities of every layer
        hooks.append(layer.self_attention.dropout.register_forward_hook(
            lambda module, args, output, index=index: calls[index].append(args[0][..., :2])))
    try:
        model(input_ids, torch.ones_like(input_ids))
    finally:
        for hook in hooks:
            hook.remove()
    reader = attention_variant(model.config).read_sinks
    first, bias = zip(*(reader(layer_calls) for layer_calls in calls), strict=True)
    bias_key = None if bias[0] is None else torch.stack(bias)
    return torch.stack(outputs), torch.stack(first), bias_key


def sample_windows(tokens: np.ndarray, num_windows: int, block_size: int,
                   seed: int) -> torch.Tensor:
    """`num_windows` windows of `block_size` consecutive tokens at seeded random offsets
    (uniform over the len(tokens) - block_size + 1 possible starts): [N, T] int64."""
    if len(tokens) < block_size:
        raise ValueError(f"the corpus holds {len(tokens)} tokens, fewer than --block_size "
                         f"{block_size}")
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(len(tokens) - block_size + 1, (num_windows,), generator=generator)
    return torch.stack([torch.from_numpy(tokens[s:s + block_size].astype(np.int64))
                        for s in starts.tolist()])  # (N, T)


def window_statistics(hidden: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per layer and window, from block outputs [L, N, T, D]: `top` [L, N, 3] (the three
    largest |h| over T x D, largest first), `median` [L, N] (the median of |h|, halfway
    between the two middle values for an even count, as numpy's), `position`, `channel`
    [L, N] (where the top-1 sits)."""
    L, N, T, D = hidden.shape
    magnitude = hidden.abs().double().reshape(L, N, T * D)  # (L, N, T*D)
    top, where = magnitude.topk(3, dim=-1)  # (L, N, 3)
    return {"top": top, "median": magnitude.quantile(0.5, dim=-1),
            "position": where[..., 0] // D, "channel": where[..., 0] % D}


def analyse(model: GPT2Model, windows: torch.Tensor, decode: Callable[[int], str],
            batch_size: int = 8) -> list[dict]:
    """The statistics of every layer of `model` over windows [N, T]: one dict per layer,
    keys as `CSV_KEYS` (less `model`); magnitudes are averages over the windows."""
    stats, first, bias = [], [], []
    device = next(model.parameters()).device
    for batch in windows.split(batch_size):
        hidden, first_weight, bias_weight = capture(model, batch.to(device))
        stats.append(window_statistics(hidden))
        first.append(first_weight.double().mean(dim=(2, 3)))  # (L, B): mean over heads, queries
        if bias_weight is not None:
            bias.append(bias_weight.double().mean(dim=(2, 3)))
    merged = {key: torch.cat([s[key] for s in stats], dim=1).cpu() for key in stats[0]}
    first_mean = torch.cat(first, dim=1).mean(dim=1).cpu()  # (L,)
    bias_mean = torch.cat(bias, dim=1).mean(dim=1).cpu() if bias else None
    layers = []
    for layer in range(merged["top"].shape[0]):
        top1 = merged["top"][layer, :, 0]  # (N,)
        window = int(top1.argmax())
        position = int(merged["position"][layer, window])
        token_id = int(windows[window, position])
        layers.append({
            "layer": layer,
            **{f"top{k + 1}": float(merged["top"][layer, :, k].mean()) for k in range(3)},
            "median": float(merged["median"][layer].mean()),
            "first_position_attention": float(first_mean[layer]),
            "bias_key_attention": None if bias_mean is None else float(bias_mean[layer]),
            "largest_value": float(top1[window]), "largest_window": window,
            "largest_position": position, "largest_channel": int(merged["channel"][layer, window]),
            "largest_token_id": token_id, "largest_token": decode(token_id),
            "top1_position_mode": _mode(merged["position"][layer]),
            "top1_channel_mode": _mode(merged["channel"][layer]),
        })
    return layers


def _mode(values: torch.Tensor) -> int:
    """The most frequent value (the smallest of equally frequent ones)."""
    counts = Counter(values.tolist())
    return min(counts, key=lambda value: (-counts[value], value))


def load_model(spec: str) -> GPT2Model:
    """A model in eval mode with eager attention from `spec`: a `pretrain.py` checkpoint file,
    a folder holding `ckpt.pt`, a Hugging Face GPT-2 folder (config.json), or a hub name."""
    path = Path(spec)
    if path.is_dir() and (path / "ckpt.pt").is_file():
        path = path / "ckpt.pt"
    if path.is_file():
        model = model_from_checkpoint(path, attention_impl="eager")
    elif path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"--model {spec}: the folder holds neither ckpt.pt nor a "
                                    "Hugging Face checkpoint (config.json + model.safetensors)")
        model = GPT2Model.from_pretrained(spec, attention_impl="eager")
    elif os.sep in spec or spec.startswith(".") or spec.endswith(".pt"):
        raise FileNotFoundError(f"--model {spec} not found: pass a pretrain.py checkpoint "
                                "(ckpt.pt), its folder, a Hugging Face GPT-2 folder or name")
    else:
        model = GPT2Model.from_pretrained(spec, attention_impl="eager")
    return model.eval()


def model_label(spec: str) -> str:
    """A short name for plots and files: the run folder of a checkpoint, else the last part."""
    path = Path(spec)
    name = path.parent.name if path.suffix == ".pt" and path.parent.name else path.name
    return re.sub(r"[^\w.-]+", "_", name) or "model"


def corpus_tokens(args: argparse.Namespace) -> tuple[np.ndarray, LMTokenizer]:
    """The token ids to draw windows from and the tokenizer that decodes them."""
    if args.data_dir:
        tokenizer = (load_tokenizer_dir(args.tokenizer) if args.tokenizer
                     else load_lm_tokenizer(args.data_dir))
        return np.asarray(open_split(args.data_dir, args.split)), tokenizer
    tokenizer = load_tokenizer_dir(args.tokenizer or gpt2_tokenizer_dir())
    return np.asarray(tokenizer.encode(read_text(args.text)), dtype=np.int64), tokenizer


def write_tables(results: dict[str, list[dict]], settings: dict, out_dir: Path) -> None:
    """outliers.json ({"settings", "models": {label: {"config", "layers"}}}) and outliers.csv
    (one row per model and layer, columns `CSV_KEYS`) in `out_dir`."""
    with open(out_dir / "outliers.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, CSV_KEYS, extrasaction="ignore")
        writer.writeheader()
        for label, result in results.items():
            writer.writerows({"model": label, **row} for row in result["layers"])
    (out_dir / "outliers.json").write_text(
        json.dumps({"settings": settings, "models": results}, indent=1), encoding="utf-8")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--model", action="append", required=True,
                        help="ckpt.pt, its folder, a Hugging Face GPT-2 folder or name; repeat "
                             "to compare models")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data_dir", help="a prepared corpus (data/prepare_lm.py)")
    source.add_argument("--text", help="a UTF-8 text file, tokenized with --tokenizer")
    parser.add_argument("--tokenizer", help="tokenizer folder (default: the corpus's, or "
                                            "GPT-2's for --text)")
    parser.add_argument("--split", default="val", choices=("train", "val"))
    parser.add_argument("--windows", type=int, default=100, help="number of random windows N")
    parser.add_argument("--block_size", type=int, default=256, help="window length T")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help="text of the 3-D figure")
    parser.add_argument("--plot_layer", type=int, default=None,
                        help="layer of the 3-D figure (default: the one with the largest top-1)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out_dir", required=True)
    args = parser.parse_args(argv)
    for name in ("windows", "block_size", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, dict]:
    from analysis.plots import plot_compare, plot_layerwise, plot_token_channels

    args = parse_args(argv)
    try:
        tokens, tokenizer = corpus_tokens(args)
        models = {model_label(spec): (spec, load_model(spec).to(args.device))
                  for spec in args.model}
    except (FileNotFoundError, ValueError, OSError) as error:
        raise SystemExit(f"error: {error}") from None
    if len(models) < len(args.model):
        raise SystemExit(f"error: two --model values share a name: {args.model}; put each "
                         "checkpoint in its own run folder")
    windows = sample_windows(tokens, args.windows, args.block_size, args.seed)
    prompt = torch.tensor([tokenizer.encode(args.prompt)])  # (1, T_prompt)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    for label, (spec, model) in models.items():
        config = model.config
        if int(windows.max()) >= config.vocab_size or int(prompt.max()) >= config.vocab_size:
            raise SystemExit(f"error: --model {spec} has a vocabulary of {config.vocab_size} "
                             f"tokens but the tokenizer gives ids up to {tokenizer.vocab_size - 1}")
        if args.block_size > config.max_position_embeddings:
            raise SystemExit(f"error: --block_size {args.block_size} exceeds the context "
                             f"{config.max_position_embeddings} of --model {spec}")
        layers = analyse(model, windows, lambda i: tokenizer.decode([i]), args.batch_size)
        results[label] = {"source": spec, "config": asdict(config), "layers": layers}
        plot_layerwise(layers, label, out_dir / f"layerwise_{label}.png")
        layer = args.plot_layer if args.plot_layer is not None else max(
            layers, key=lambda row: row["top1"])["layer"]
        if not 0 <= layer < len(layers):
            raise SystemExit(f"error: --plot_layer {layer} is not a block of --model {spec} "
                             f"(0 .. {len(layers) - 1})")
        prompt_ids = prompt[:, :config.max_position_embeddings].to(args.device)
        hidden = capture(model, prompt_ids)[0][layer, 0].cpu()  # (T_prompt, D)
        plot_token_channels(hidden, [tokenizer.decode([i]) for i in prompt[0].tolist()],
                            f"{label}, block {layer}", out_dir / f"tokens_channels_{label}.png")
        top = max(layers, key=lambda row: row["top1"])
        print(f"{label}: largest top-1 {top['top1']:.1f} at block {top['layer']} (median "
              f"{top['median']:.3f}); attention on the first position "
              f"{np.mean([row['first_position_attention'] for row in layers]):.3f}")
    plot_compare({label: result["layers"] for label, result in results.items()},
                 out_dir / "compare_top1.png", out_dir.resolve().name)
    settings = {key: getattr(args, key) for key in ("model", "data_dir", "text", "split",
                                                    "windows", "block_size", "seed", "prompt")}
    write_tables(results, settings, out_dir)
    print(f"wrote {out_dir}/outliers.json, outliers.csv and the figures")
    return results


if __name__ == "__main__":
    main()

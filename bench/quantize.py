"""Quantization's tradeoff between utility and memory (handout 7.4), one model, one table.

    .venv/bin/python bench/quantize.py --model out/pretrain/best.pt --data_dir data/shakespeare_char
    .venv/bin/python bench/quantize.py --model gpt2 --text ../shared/data/wikitext-2/test.txt \\
        --classifier_checkpoint out/sst-classifier.pt --classifier_task sst
    .venv/bin/python bench/quantize.py --model gpt2 --text ../shared/data/wikitext-2/test.txt \\
        --classifier_flags "--task sst --fine-tune-mode full-model --epochs 1"

Rows: fp32, bf16 (`quantize_model(model, "bf16")`), int8 weight-only (the transformer
blocks' linear layers, `quantize_model(model, "int8")`) and int8 including the embeddings
(`include_embeddings=True`).  Columns: megabytes of the whole model and of its blocks
(`model_bytes`), bits per byte and perplexity on the text (`evaluate_lm.evaluate_ids`,
windows of `--block_size`, the first `--max_tokens` tokens), the task metric, and
milliseconds per generated token (greedy, batch 1, the KV cache, median of `--repeats`).
The task metric is the dev accuracy of a fine-tuned `classifier.py` checkpoint
(`--classifier_checkpoint`, evaluated by `classifier.py --ensemble CKPT --quantize` of the
row, which trains nothing; `--classifier_flags` adds flags such as `--data_dir`), or of
`classifier.py` run with `--classifier_flags` alone and the row's `--quantize` (the same seed
and steps, so the same fine-tuned model, evaluated quantized).
The row with the embeddings has no task metric: the task scripts' `--quantize` has no such
mode.

In the same run, when `torchao` is installed, the fp32 model's block linear layers are
quantized with torchao's `Int8WeightOnlyConfig` and the largest logit difference against
ours (and against fp32) on the text's first window is printed; otherwise the bench says
that torchao is not installed.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from torch import nn

from evaluate_lm import evaluate_ids
from models.generate import generate
from models.gpt2 import GPT2Model
from modules.lora import merge_lora
from modules.quantize import model_bytes, quantize_model
from training.args import POSITIVE_INT
from training.helpformat import HelpFormatter
from training.lm_data import open_split, read_text
from training.loading import load_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# row name -> how the model is quantized (None: as trained, fp32)
ROWS = {"fp32": None, "bf16": ("bf16", False), "int8 weight-only": ("int8", False),
        "int8 incl. embeddings": ("int8", True)}


def quantized(model: nn.Module, how: tuple[str, bool] | None) -> nn.Module:
    """A quantized copy of `model` (LoRA adapters merged first), or the model itself."""
    if how is None:
        return model
    copied = copy.deepcopy(model)
    merge_lora(copied)
    return quantize_model(copied, how[0], include_embeddings=how[1])


def ms_per_token(model: GPT2Model, prompt: list[int], new_tokens: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        generate(model, [prompt], max_new_tokens=new_tokens, eos_id=None)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times) / new_tokens


def first_window_logits(model: GPT2Model, ids: np.ndarray, block_size: int) -> torch.Tensor:
    window = torch.as_tensor(np.asarray(ids[:block_size], dtype=np.int64))[None]
    with torch.no_grad():
        hidden = model.eval()(window, torch.ones_like(window))["last_hidden_state"]
        return model.hidden_state_to_token(hidden).float()  # (1, T, V)


def torchao_line(model: GPT2Model, ours_int8: GPT2Model, ids: np.ndarray,
                 block_size: int) -> str:
    """torchao's Int8WeightOnlyConfig on the blocks' linear layers against ours."""
    try:
        from torchao.quantization import Int8WeightOnlyConfig, quantize_
    except ImportError:
        return ("torchao: not installed (`pip install torchao`), no comparison; the kit's "
                "pins leave it out")
    theirs = copy.deepcopy(model)
    quantize_(theirs, Int8WeightOnlyConfig(),
              filter_fn=lambda module, name: isinstance(module, nn.Linear)
              and name.startswith("gpt_layers."))
    reference = first_window_logits(model, ids, block_size)
    logits = first_window_logits(theirs, ids, block_size)
    ours = first_window_logits(ours_int8, ids, block_size)
    return (f"torchao Int8WeightOnlyConfig on the blocks' linear layers: largest logit "
            f"difference to ours {(logits - ours).abs().max():.3g}, ours to fp32 "
            f"{(ours - reference).abs().max():.3g}, torchao to fp32 "
            f"{(logits - reference).abs().max():.3g} (logits up to "
            f"{reference.abs().max():.3g})")


def classifier_accuracy(flags: list[str], mode: str | None) -> float:
    """The dev accuracy `classifier.py` prints, run with `flags` and `--quantize mode`."""
    command = [sys.executable, os.path.join(REPO, "classifier.py"), *flags,
               "--quantize", mode or "none"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"classifier.py {' '.join(flags)} failed:\n{result.stderr[-2000:]}")
    return float(re.findall(r"(?:best|ensemble of 1:) dev acc (\d+\.\d+)", result.stdout)[-1])


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--model", required=True, help="as evaluate_lm.py's --model")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="a UTF-8 text to score")
    source.add_argument("--data_dir", help="a data/prepare_lm.py folder: its val split")
    parser.add_argument("--tokenizer", help="as evaluate_lm.py's --tokenizer")
    parser.add_argument("--block_size", type=POSITIVE_INT, default=None,
                        help="window length (default: the model's context)")
    parser.add_argument("--max_tokens", type=POSITIVE_INT, default=20000,
                        help="score the first N tokens of the text (20000)")
    parser.add_argument("--new_tokens", type=POSITIVE_INT, default=64,
                        help="generated tokens per timing (64)")
    parser.add_argument("--repeats", type=POSITIVE_INT, default=3)
    parser.add_argument("--threads", type=POSITIVE_INT, default=None)
    parser.add_argument("--classifier_checkpoint", help="a classifier.py checkpoint "
                        "({task}-classifier.pt): its dev accuracy is each row's task metric")
    parser.add_argument("--classifier_flags", help="classifier.py flags (one string): alone, "
                        "a training run whose dev accuracy is each row's task metric; with "
                        "--classifier_checkpoint, added to its evaluation (e.g. --data_dir)")
    parser.add_argument("--classifier_task", default="sst", choices=("sst", "cfimdb"),
                        help="the task of --classifier_checkpoint")
    args = parser.parse_args(argv)
    if args.classifier_checkpoint and not os.path.isfile(args.classifier_checkpoint):
        parser.error(f"--classifier_checkpoint {args.classifier_checkpoint}: no such file")
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tokenizer = load_model(args.model, args.tokenizer or args.data_dir)
    model.eval()
    if args.text:
        ids = np.asarray(tokenizer.encode(read_text(args.text)))
    else:
        ids = np.asarray(open_split(args.data_dir, "val"))
    ids = ids[:args.max_tokens]
    block_size = args.block_size or model.config.max_position_embeddings
    prompt = [int(t) for t in ids[:16]]
    with tempfile.TemporaryDirectory(prefix="quantize-bench-") as scratch:  # the classifier's files
        classifier_flags = shlex.split(args.classifier_flags or "")
        if args.classifier_checkpoint:
            classifier_flags += ["--task", args.classifier_task, "--ensemble",
                                 args.classifier_checkpoint, "--out_dir", scratch]
        rows = []
        for name, how in ROWS.items():
            lm = quantized(model, how)
            figures = evaluate_ids(lm, tokenizer, ids, block_size, max(1, block_size // 2))
            row = {"format": name, "MiB": model_bytes(lm) / 2**20,
                   "blocks MiB": model_bytes(lm.gpt_layers) / 2**20,
                   "bits/byte": figures["bits_per_byte"], "perplexity": figures["perplexity"],
                   "ms/token": ms_per_token(lm, prompt, args.new_tokens, args.repeats)}
            if classifier_flags:
                row["task dev acc"] = ("--" if how is not None and how[1] else
                                       classifier_accuracy(classifier_flags, how and how[0]))
            rows.append(row)
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |")
    print("| " + " | ".join("---" for _ in columns) + " |")
    for row in rows:
        print("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v)
                                for v in row.values()) + " |")
    base = rows[0]["bits/byte"]
    for row in rows[1:]:
        print(f"{row['format']}: {row['MiB'] / rows[0]['MiB']:.1%} of the fp32 bytes "
              f"({row['blocks MiB'] / rows[0]['blocks MiB']:.1%} in the blocks), bits per byte "
              f"{(row['bits/byte'] - base) / base:+.3%} against fp32")
    print(torchao_line(model, quantized(model, ROWS["int8 weight-only"]), ids, block_size))
    return rows


if __name__ == "__main__":
    main()

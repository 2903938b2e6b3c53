"""LoRA against ReFT at equal steps (handout 7.5): trainable parameters and the task metric.

    .venv/bin/python bench/lora_vs_reft.py --model_path CHECKPOINT_DIR --data_dir data \\
        --max_train_examples 512 --epochs 2
    .venv/bin/python bench/lora_vs_reft.py --tiny --data_dir data    # a random tiny GPT-2

Runs `classifier.py` (SST, the head plus the method's parameters, the same seed, batches
and steps) once with `--peft lora` (r 8 on query and value, the defaults) and once with
`--peft reft` (rank 4 on every layer's last token, the defaults), each at its default
learning rate, and prints one table: trainable parameters, their share of the model,
dev accuracy and macro-F1, and seconds.  `--tiny` builds a random GPT-2 of 2 layers x 64
with GPT-2's vocabulary (offline; then the accuracies say only that both train, since no
pretrained features are there to steer).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from training.args import POSITIVE_INT
from training.helpformat import HelpFormatter

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

METHODS = {"lora": ["--peft", "lora"], "reft": ["--peft", "reft"]}


def tiny_checkpoint(folder: Path) -> Path:
    """A random Hugging Face GPT-2, 2 layers x 64, GPT-2's vocabulary, saved in `folder`."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_head=2, n_embd=64, n_positions=256)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def run(method: str, flags: list[str]) -> dict:
    """classifier.py with `flags` and the method's: its printed trainable count and best dev
    accuracy and macro-F1, and the wall time."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, os.path.join(REPO, "classifier.py"), *flags,
                          *METHODS[method]], capture_output=True, text=True, check=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"}).stdout
    seconds = time.perf_counter() - start
    trainable = re.search(r"peft \w+ on \d+ layers: ([\d,]+) of [\d,]+ parameters train "
                          r"\((\d+\.\d+%)\)", out)
    best = re.findall(r"best dev acc (\d+\.\d+), macro-F1 (\d+\.\d+)", out)[-1]
    return {"method": method, "trainable": trainable.group(1), "share": trainable.group(2),
            "dev acc": float(best[0]), "dev macro-F1": float(best[1]), "seconds": seconds}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--model_path", help="a GPT-2 checkpoint folder (or use --tiny)")
    parser.add_argument("--tiny", action="store_true", help="a random 2 x 64 GPT-2")
    parser.add_argument("--data_dir", required=True, help="data/prepare.py's folder")
    parser.add_argument("--tokenizer", help="default: DATA_DIR/gpt2-tokenizer")
    parser.add_argument("--max_train_examples", type=POSITIVE_INT, default=256)
    parser.add_argument("--epochs", type=POSITIVE_INT, default=1)
    parser.add_argument("--max_length", type=POSITIVE_INT, default=128)
    args = parser.parse_args(argv)
    if bool(args.model_path) == args.tiny:
        parser.error("pass --model_path DIR or --tiny (one of them)")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        model_path = str(tiny_checkpoint(scratch / "tiny") if args.tiny else args.model_path)
        flags = ["--task", "sst", "--model_path", model_path, "--data_dir", args.data_dir,
                 "--tokenizer", args.tokenizer or str(Path(args.data_dir) / "gpt2-tokenizer"),
                 "--out_dir", str(scratch / "predictions"), "--checkpoint_dir",
                 str(scratch / "out"), "--epochs", str(args.epochs), "--max_train_examples",
                 str(args.max_train_examples), "--max_length", str(args.max_length)]
        rows = [run(method, flags) for method in METHODS]
    print(f"SST, {args.max_train_examples} training examples, {args.epochs} epoch(s), "
          f"batch 8, the same seed; {'random tiny GPT-2' if args.tiny else args.model_path}")
    print("| " + " | ".join(rows[0]) + " |")
    print("| " + " | ".join("---" for _ in rows[0]) + " |")
    for row in rows:
        print("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v)
                                for v in row.values()) + " |")
    return rows


if __name__ == "__main__":
    main()

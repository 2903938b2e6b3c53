"""AdamW, Muon and Shampoo (handout 7.6) on Tiny Shakespeare at equal steps: the steps and
seconds each needs to reach a validation loss, and the curves in one figure.

    .venv/bin/python bench/optimizers.py                       # the CPU default, a few minutes
    .venv/bin/python bench/optimizers.py --max_iters 600 --target 1.9 --n_layer 4 --n_embd 128

Each optimizer trains the same model from the same weights on the same batches through
``pretrain.py`` (character-level Tiny Shakespeare, ``data/prepare_lm.py --tokenizer bytes``
into ``--data_dir`` when it is not there yet): with ``--optimizer muon`` or ``shampoo`` the
blocks' matrices take it and AdamW the rest (``training/optimizers.py``).  The runs go one
after the other, so their seconds share the machine's load only roughly; the steps do not
depend on it.  Prints one row per optimizer and writes ``OUT_DIR/optimizers.png``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

import pretrain
from data import prepare_lm
from training.args import POSITIVE_FLOAT, POSITIVE_INT
from training.helpformat import HelpFormatter
from training.metrics import read_metrics
from training.optimizers import (
    MUON_LR,
    OPTIMIZERS,
    SHAMPOO_EPS,
    SHAMPOO_LR,
    SHAMPOO_UPDATE_EVERY,
)
from training.plots import plt

REPO = Path(__file__).resolve().parents[1]

TEXT = REPO.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"


def get_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--input", default=str(TEXT), help="Tiny Shakespeare's input.txt")
    parser.add_argument("--data_dir", default=str(REPO / "data" / "shakespeare_char"))
    parser.add_argument("--out_dir", default=str(REPO / "out" / "bench_optimizers"))
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS),
                        choices=list(OPTIMIZERS))
    parser.add_argument("--target", type=POSITIVE_FLOAT, default=2.6,
                        help="the validation loss whose first crossing is reported")
    for name, default in (("max_iters", 400), ("eval_interval", 25), ("eval_iters", 10),
                          ("n_layer", 2), ("n_head", 4), ("n_embd", 64), ("block_size", 64),
                          ("batch_size", 12)):
        parser.add_argument(f"--{name}", type=POSITIVE_INT, default=default)
    parser.add_argument("--learning_rate", type=POSITIVE_FLOAT, default=1e-3,
                        help="AdamW's peak lr (every run)")
    parser.add_argument("--muon_lr", type=POSITIVE_FLOAT, default=MUON_LR)
    parser.add_argument("--shampoo_lr", type=POSITIVE_FLOAT, default=SHAMPOO_LR)
    parser.add_argument("--shampoo_update_every", type=POSITIVE_INT,
                        default=SHAMPOO_UPDATE_EVERY)
    parser.add_argument("--shampoo_eps", type=POSITIVE_FLOAT, default=SHAMPOO_EPS)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=POSITIVE_INT, default=1,
                        help="torch threads (on a loaded machine more threads wait on "
                             "each other)")
    return parser.parse_args(argv)


def prepare(args: argparse.Namespace) -> None:
    """The character-level corpus in ``args.data_dir``, unless it is there already."""
    if (Path(args.data_dir) / "meta.json").exists():
        return
    if not Path(args.input).exists():
        raise SystemExit(f"--input {args.input}: no such file; pass Tiny Shakespeare's "
                         "input.txt (../shared/data/tinyshakespeare/input.txt)")
    prepare_lm.main(["--input", args.input, "--tokenizer", "bytes", "--out_dir", args.data_dir])


def train(args: argparse.Namespace, optimizer: str) -> list[dict]:
    """One pretrain.py run with ``optimizer``; its evaluation rows."""
    out = os.path.join(args.out_dir, optimizer)
    flags = ["--data_dir", args.data_dir, "--out_dir", out, "--optimizer", optimizer,
             "--num_samples", "0", "--device", args.device, "--warmup_iters",
             str(max(args.max_iters // 20, 1)), "--log_interval", str(args.eval_interval)]
    for name in ("max_iters", "eval_interval", "eval_iters", "n_layer", "n_head", "n_embd",
                 "block_size", "batch_size", "learning_rate", "muon_lr", "shampoo_lr",
                 "shampoo_update_every", "shampoo_eps"):
        flags += [f"--{name}", str(getattr(args, name))]
    pretrain.main(flags)
    return [row for row in read_metrics(os.path.join(out, "metrics.jsonl"))
            if row["val_loss"] is not None]


def reached(rows: list[dict], target: float) -> tuple[int | None, float | None]:
    """(step, seconds) of the first evaluation at or below ``target`` (None: never)."""
    for row in rows:
        if row["val_loss"] <= target:
            return row["iter"], row["time_s"]
    return None, None


def main(argv: list[str] | None = None) -> dict[str, list[dict]]:
    args = get_args(argv)
    torch.set_num_threads(args.threads)
    prepare(args)
    runs = {name: train(args, name) for name in args.optimizers}
    print(f"\n{args.n_layer} layers x {args.n_embd}, context {args.block_size}, batch "
          f"{args.batch_size}, {args.max_iters} steps; target validation loss {args.target}")
    print("| optimizer | final val loss | best val loss | steps to target | seconds to target "
          "| s/step |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, rows in runs.items():
        step, seconds = reached(rows, args.target)
        last = rows[-1]
        print(f"| {name} | {last['val_loss']:.4f} | {min(r['val_loss'] for r in rows):.4f} | "
              f"{step if step is not None else 'not reached'} | "
              f"{f'{seconds:.1f}' if seconds is not None else '-'} | "
              f"{last['time_s'] / last['iter']:.3f} |")
    figure, (by_step, by_time) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for name, rows in runs.items():
        by_step.plot([r["iter"] for r in rows], [r["val_loss"] for r in rows], label=name)
        by_time.plot([r["time_s"] for r in rows], [r["val_loss"] for r in rows], label=name)
    for axis, label in ((by_step, "step"), (by_time, "seconds")):
        axis.axhline(args.target, color="grey", linestyle=":", linewidth=1)
        axis.set_xlabel(label)
        axis.grid(alpha=0.3)
    by_step.set_ylabel("validation loss")
    by_step.legend()
    figure.suptitle(f"Tiny Shakespeare, {args.n_layer} x {args.n_embd}: AdamW, Muon, Shampoo")
    figure.tight_layout()
    path = Path(args.out_dir) / "optimizers.png"
    figure.savefig(path, dpi=120)
    print(f"curves -> {path}")
    return runs


if __name__ == "__main__":
    main()

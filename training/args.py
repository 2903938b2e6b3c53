"""Command-line plumbing shared by the scripts: bounded argparse types, the model flags and
the optimizer flags (``training.optimizers`` builds what they choose)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any, NoReturn

import torch

from training import paths
from training.optimizers import (
    MUON_LR,
    OPTIMIZERS,
    SHAMPOO_EPS,
    SHAMPOO_LR,
    SHAMPOO_UPDATE_EVERY,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = str(paths.DATA_DIR)  # where data/prepare.py writes: the default --data_dir


def bounded(kind: type, low: float | None = None, high: float | None = None,
            low_open: bool = False, high_open: bool = False):
    """An argparse ``type``: ``kind(text)`` within [low, high] (``low_open``/``high_open``
    exclude that end).  A bad value is refused with the value and the allowed range, e.g.
    ``argument --epochs: -1 is not an integer >= 1``."""
    name = "an integer" if kind is int else "a number"
    limits = ([f"{'>' if low_open else '>='} {low:g}"] if low is not None else []) + \
             ([f"{'<' if high_open else '<='} {high:g}"] if high is not None else [])
    wanted = f"{name} {' and '.join(limits)}".strip()

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not {wanted}")
        return value

    parse.__name__ = wanted  # what argparse names in its own messages
    return parse


POSITIVE_INT = bounded(int, 1)
NON_NEGATIVE_INT = bounded(int, 0)
POSITIVE_FLOAT = bounded(float, 0.0, low_open=True)
NON_NEGATIVE_FLOAT = bounded(float, 0.0)
PROBABILITY_BELOW_ONE = bounded(float, 0.0, 1.0, high_open=True)  # dropout


def flag_error(message: str) -> NoReturn:
    """Exit as argparse refuses a flag: ``<script>: error: <message>`` on stderr, exit
    status 2, no traceback.  For a value that only the model can refuse, once it is built
    (e.g. ``--reft_rank 100: ...`` on a model 32 wide)."""
    print(f"{os.path.basename(sys.argv[0])}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def torch_device(text: str) -> str:
    """An argparse ``type`` for ``--device``: a device this machine has (``cpu``; ``cuda``
    or ``cuda:N`` with CUDA; ``mps`` on Apple silicon).  Anything else is refused naming it,
    e.g. ``argument --device: 'tpu' is not a device this machine has (it has cpu)``."""
    here, shown = ["cpu"], ["cpu"]
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        here += ["cuda", *(f"cuda:{index}" for index in range(count))]
        shown += ["cuda", "cuda:0" if count == 1 else f"cuda:0 .. cuda:{count - 1}"]
    if torch.backends.mps.is_available():
        here.append("mps")
        shown.append("mps")
    if text not in here:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device this machine has (it "
                                         f"has {', '.join(shown)})")
    return text


def device_from_args(args: argparse.Namespace) -> torch.device:
    """CUDA when --use_gpu is given (exit with what to drop when there is none), else CPU."""
    if args.use_gpu and not torch.cuda.is_available():
        raise SystemExit("--use_gpu given but CUDA is not available; drop --use_gpu")
    return torch.device("cuda" if args.use_gpu else "cpu")


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """The flags every task script shares: weights, tokenizer, data, device, training size."""
    parser.add_argument("--epochs", type=POSITIVE_INT, default=10)
    parser.add_argument("--batch_size", type=POSITIVE_INT, default=8)
    parser.add_argument("--max_train_examples", type=POSITIVE_INT, default=None,
                        help="train on the first N training examples only (smoke runs)")
    parser.add_argument("--use_gpu", action="store_true", help="CUDA with bf16 autocast")
    parser.add_argument("--model_size", default="gpt2",
                        choices=["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"],
                        help="published GPT-2 to load from the Hugging Face hub or cache")
    parser.add_argument("--model_path", default=None,
                        help="a local Hugging Face GPT-2 checkpoint folder (config.json + "
                             "model.safetensors) or a pretrain.py checkpoint (its out_dir, "
                             "ckpt.pt or best.pt); overrides --model_size")
    parser.add_argument("--random_init", action="store_true",
                        help="random weights of --model_size's shape (smoke runs only)")
    parser.add_argument("--tokenizer", default=None,
                        help="Hugging Face tokenizer name, or a folder with vocab.json and "
                             "merges.txt (default: for a pretrain.py --model_path, the "
                             "tokenizer of its run's corpus; else the GPT-2 files "
                             "data/prepare.py copies, data/gpt2-tokenizer)")
    parser.add_argument("--sdpa", action="store_true",
                        help="fused attention (torch scaled_dot_product_attention)")
    parser.add_argument("--attention_window", type=POSITIVE_INT, default=None,
                        help="sliding-window attention (handout 7.8): a query sees the last W "
                             "positions (default: the checkpoint's; every position for GPT-2)")
    parser.add_argument("--attention_sinks", type=NON_NEGATIVE_INT, default=None,
                        help="with --attention_window, the first S positions stay visible "
                             "(default: the checkpoint's; 0 for GPT-2)")
    parser.add_argument("--data_dir", default=DATA_DIR, help="prepared data folder")
    parser.add_argument("--out_dir", default=os.path.join(REPO, "predictions"),
                        help="where prediction files are written")
    parser.add_argument("--checkpoint_dir", default=os.path.join(REPO, "out"),
                        help="where the best checkpoint and the metrics log are written")
    parser.add_argument("--seed", type=int, default=11711)
    add_optimizer_args(parser)


def reft_layers(text: str) -> str:
    """``--reft_layers``: "all" or comma-separated layer indices (checked against the
    model's depth when the interventions are added)."""
    entries = text.split(",")
    if text != "all" and not all(entry.strip().isdigit() for entry in entries):
        raise argparse.ArgumentTypeError(f"{text!r} is not 'all' nor comma-separated layer "
                                         "indices such as 0,3")
    return text


def reft_positions(text: str) -> str:
    """``--reft_positions``: last, last:k, first+last or first+last:k."""
    from modules.reft import parse_positions

    try:
        parse_positions(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def add_quantize_args(parser: argparse.ArgumentParser) -> None:
    """`--quantize`: evaluate the model quantized (handout 7.4, `modules/quantize.py`)."""
    from modules.quantize import QUANTIZE_MODES

    parser.add_argument("--quantize", default="none", choices=["none", *QUANTIZE_MODES],
                        help="evaluate with int8 weights in the transformer blocks, or the "
                             "whole model in bfloat16 (training is unchanged)")


def add_peft_args(parser: argparse.ArgumentParser) -> None:
    """Parameter-efficient fine-tuning flags (handout 7.2), applied by `training.peft`."""
    parser.add_argument("--peft", default="none", choices=["none", "lora", "reft"],
                        help="lora: train low-rank adapters (and a task head) only; reft: "
                             "train LoReFT interventions on hidden states (handout 7.5)")
    parser.add_argument("--lora_r", type=POSITIVE_INT, default=8, help="adapter rank")
    parser.add_argument("--lora_alpha", type=POSITIVE_FLOAT, default=16.0,
                        help="the update is scaled by alpha / r")
    parser.add_argument("--lora_dropout", type=PROBABILITY_BELOW_ONE, default=0.0,
                        help="dropout on the adapter branch's input")
    parser.add_argument("--lora_targets", nargs="+", default=["query", "value"],
                        help="names of the nn.Linear layers that get adapters (query key "
                             "value attention_dense interm_dense out_dense)")
    parser.add_argument("--reft_rank", type=POSITIVE_INT, default=4,
                        help="rank r of each LoReFT intervention")
    parser.add_argument("--reft_layers", type=reft_layers, default="all",
                        help="layers whose outputs are edited: all, or indices such as 0,3")
    parser.add_argument("--reft_positions", type=reft_positions, default="last",
                        help="real-token positions edited in each row: last, first+last, or "
                             "with :k the first and last k (e.g. first+last:2)")
    parser.add_argument("--reft_dropout", type=PROBABILITY_BELOW_ONE, default=0.0,
                        help="dropout on the edited states")


def add_optimizer_args(parser: argparse.ArgumentParser) -> None:
    """The optimizer flags of pretrain.py and every task script."""
    parser.add_argument("--optimizer", default="adamw", choices=list(OPTIMIZERS),
                        help="muon or shampoo: the transformer blocks' 2-D matrices with it, "
                             "everything else with AdamW (handout 7.6)")
    parser.add_argument("--muon_lr", type=POSITIVE_FLOAT, default=MUON_LR,
                        help="--optimizer muon: the matrices' peak learning rate")
    parser.add_argument("--shampoo_lr", type=POSITIVE_FLOAT, default=SHAMPOO_LR,
                        help="--optimizer shampoo: the matrices' peak learning rate")
    parser.add_argument("--shampoo_update_every", type=POSITIVE_INT,
                        default=SHAMPOO_UPDATE_EVERY,
                        help="--optimizer shampoo: steps between recomputing the inverse roots")
    parser.add_argument("--shampoo_eps", type=POSITIVE_FLOAT, default=SHAMPOO_EPS,
                        help="--optimizer shampoo: eps of (L + eps I)^(-1/4) and (R + eps I)^(-1/4)")


OPTIMIZER_FLAGS = ("optimizer", "muon_lr", "shampoo_lr", "shampoo_update_every", "shampoo_eps")


def optimizer_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``TrainConfig`` fields of ``add_optimizer_args``' flags, as parsed."""
    return {name: getattr(args, name) for name in OPTIMIZER_FLAGS}


def add_ensemble_args(parser: argparse.ArgumentParser) -> None:
    """The task scripts' ensemble mode (`ensemble.py` runs it): no training."""
    parser.add_argument("--ensemble", nargs="+", default=None, metavar="CKPT",
                        help="train nothing: average the class probabilities of these "
                             "fine-tuned checkpoints of the task (each rebuilt with the flags "
                             "it was trained with) and write the prediction files, under the "
                             "graded names by default")

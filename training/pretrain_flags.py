"""The flags of ``pretrain.py`` (handout 8), declared once: the script parses them and the
sweep runner (``training.sweeps``) checks a grid file against the very same parser.

``build_parser()`` is the parser; ``check_args`` refuses combinations that cannot train
(naming the flags and values) and fills the derived defaults (``lr_decay_iters``,
``dtype``); ``check_device`` refuses a device (or, for ``--compile``, a C++ compiler) this
machine lacks, which a sweep submitted from a login node without a GPU must not check.

A resume (``--init_from resume``) continues the run its checkpoint saved: the flags of
``RESUME_FLAGS`` (the schedule and the model) take the checkpoint's values, and one given
on the command line with another value is refused, naming each, unless ``--override``
(``resume_flags``).  Its combinations are checked (``check_args``) once the checkpoint's
values are in, not against the defaults of the flags left out.
"""

from __future__ import annotations

import argparse
import os
import shutil

import torch

from config import BOOLEAN_SWITCHES, SWITCH_HELP, SWITCHES, GPT2Config
from training import distributed
from training.args import (
    NON_NEGATIVE_FLOAT,
    NON_NEGATIVE_INT,
    OPTIMIZER_FLAGS,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    PROBABILITY_BELOW_ONE,
    add_optimizer_args,
    bounded,
)
from training.helpformat import HelpFormatter
from training.trainer import AUTOCAST_DTYPES

COMPARE_STEPS = 50  # --compare_devices times this many steps on each device
SAMPLE_PROMPTS = ("\n", "The ", "ROMEO:")  # what samples.txt continues unless --sample_prompts
# GPT2Config's numeric research options, each a flag of the same name (validated by the config)
NUMERIC_OPTIONS = ("rope_theta", "rotary_fraction", "z_loss", "mu_loss")
# GPT2Config's integer options (handout 7.8), each a flag of the same name -> its type
WINDOW_OPTIONS = {"attention_window": POSITIVE_INT, "attention_sinks": NON_NEGATIVE_INT}
# The flags a resume keeps from its checkpoint: the schedule (and the tokens per step) ...
SCHEDULE_FLAGS = ("max_iters", "learning_rate", "min_lr", "warmup_iters", "lr_decay_iters",
                  "decay_lr", "weight_decay", "beta1", "beta2", "grad_clip", "batch_size",
                  "gradient_accumulation_steps", *OPTIMIZER_FLAGS)
# ... and the model
MODEL_FLAGS = ("n_layer", "n_head", "n_embd", "block_size", "dropout", *SWITCHES,
               *BOOLEAN_SWITCHES, *NUMERIC_OPTIONS, *WINDOW_OPTIONS)
RESUME_FLAGS = SCHEDULE_FLAGS + MODEL_FLAGS
# Switches whose pretraining default is not GPT2Config's: the fused attention kernel, the
# same function as the handout's eager softmax (to 1e-5 in fp32) and the faster step.
PRETRAIN_DEFAULTS = {"attention_impl": "sdpa"}


def flag_bool(text: str) -> bool:
    """``True``/``False`` (nanoGPT's ``--compile=False``), also 1/0, yes/no."""
    values = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if text.lower() not in values:
        raise argparse.ArgumentTypeError(f"{text!r} is not True or False")
    return values[text.lower()]


def build_parser(allow_abbrev: bool = True) -> argparse.ArgumentParser:
    """pretrain.py's parser; ``allow_abbrev=False`` refuses shortened flag names."""
    parser = argparse.ArgumentParser(
        prog="pretrain.py", allow_abbrev=allow_abbrev, formatter_class=HelpFormatter,
        description="Train a GPT-2 from scratch (or continue one) on a prepared corpus.")
    add = parser.add_argument
    add("--data_dir", default="data/shakespeare_char", help="folder from data/prepare_lm.py")
    add("--out_dir", default="out/pretrain")
    add("--init_from", default="scratch",
        help="scratch, resume (out_dir/ckpt.pt), or a GPT-2: gpt2, gpt2-medium, ... or a folder")
    for name, kind, default, text in (
            ("n_layer", POSITIVE_INT, 4, "layers"), ("n_head", POSITIVE_INT, 4, "heads"),
            ("n_embd", POSITIVE_INT, 128, "width"), ("block_size", POSITIVE_INT, 64, "context"),
            ("batch_size", POSITIVE_INT, 12, "sequences per micro-batch and process"),
            ("gradient_accumulation_steps", POSITIVE_INT, 1, "micro-steps per step, all "
             "processes together"),
            ("max_iters", POSITIVE_INT, 2000, "optimizer steps"),
            ("learning_rate", POSITIVE_FLOAT, 1e-3, "peak lr"),
            ("min_lr", NON_NEGATIVE_FLOAT, 1e-4, "lr floor"),
            ("warmup_iters", NON_NEGATIVE_INT, 100, "linear warmup steps"),
            ("lr_decay_iters", POSITIVE_INT, None, "cosine length (default: max_iters)"),
            ("weight_decay", NON_NEGATIVE_FLOAT, 0.1, "on matrices and embeddings"),
            ("beta1", bounded(float, 0.0, 1.0, high_open=True), 0.9, "AdamW beta1"),
            ("beta2", bounded(float, 0.0, 1.0, high_open=True), 0.99, "AdamW beta2"),
            ("grad_clip", NON_NEGATIVE_FLOAT, 1.0, "max gradient norm, 0 = off"),
            ("dropout", PROBABILITY_BELOW_ONE, 0.0, "dropout everywhere"),
            ("eval_interval", POSITIVE_INT, 250, "steps between evaluations"),
            ("eval_iters", POSITIVE_INT, 20, "validation micro-batches per evaluation"),
            ("log_interval", POSITIVE_INT, 10, "steps between metrics rows"),
            ("keep_checkpoints", NON_NEGATIVE_INT, 0, "also keep the last N evaluation "
             "checkpoints as ckpt_<iter>.pt, for average_checkpoints.py (0 = none)"),
            ("seed", int, 1337, "random seed"),
            ("num_samples", NON_NEGATIVE_INT, 1, "samples per prompt in samples.txt"),
            ("max_new_tokens", POSITIVE_INT, 200, "tokens per sample"),
            ("temperature", NON_NEGATIVE_FLOAT, 0.8, "sampling temperature (0 = greedy)"),
            ("top_p", bounded(float, 0.0, 1.0, low_open=True), 0.95, "nucleus sampling"),
            ("ddp_timeout", POSITIVE_FLOAT, 300.0, "seconds a rank waits for the others")):
        add(f"--{name}", type=kind, default=default, help=text)
    add_optimizer_args(parser)
    add("--sample_prompts", nargs="+", default=list(SAMPLE_PROMPTS),
        help=f"prompts samples.txt continues (default: {list(SAMPLE_PROMPTS)})")
    add("--device", default="cpu", choices=["cpu", "cuda"])
    add("--dtype", default=None, choices=list(AUTOCAST_DTYPES),
        help="autocast on a GPU (default bfloat16); the CPU trains in float32")
    for name, text in (("compile", "torch.compile the model"),
                       ("decay_lr", "cosine decay (False: constant lr after warmup)"),
                       ("wandb_log", "also send the metrics to Weights & Biases"),
                       ("compare_devices", f"time {COMPARE_STEPS} steps on the CPU and the GPU")):
        add(f"--{name}", type=flag_bool, nargs="?", const=True,
            default=name == "decay_lr", help=text)
    add("--parallel", default="ddp", choices=list(distributed.WRAPPERS),
        help="under torchrun: ddp (a copy per GPU) or fsdp (FSDP2 fully_shard, sharded)")
    add("--override", action="store_true",
        help="--init_from resume: take the schedule and model flags given here over the "
             "checkpoint's (each change is logged) instead of refusing them")
    add("--wandb_project", default="build-gpt2")
    add("--wandb_run_name", default=None)
    for name, allowed in SWITCHES.items():
        add(f"--{name}", default=PRETRAIN_DEFAULTS.get(name, getattr(GPT2Config, name)),
            choices=allowed, help=SWITCH_HELP[name])
    for name in BOOLEAN_SWITCHES:
        add(f"--{name}", type=flag_bool, nargs="?", const=True,
            default=getattr(GPT2Config, name), help=SWITCH_HELP[name])
    for name in NUMERIC_OPTIONS:
        add(f"--{name}", type=float, default=getattr(GPT2Config, name),
            help=SWITCH_HELP[name])
    for name, kind in WINDOW_OPTIONS.items():
        add(f"--{name}", type=kind, default=getattr(GPT2Config, name), help=SWITCH_HELP[name])
    return parser


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse combinations of flags that cannot train, naming the flags and values."""
    args.lr_decay_iters = args.lr_decay_iters or args.max_iters
    if args.n_embd % args.n_head:
        parser.error(f"--n_embd {args.n_embd} is not divisible by --n_head {args.n_head}")
    if args.min_lr > args.learning_rate:
        parser.error(f"--min_lr {args.min_lr} is above --learning_rate {args.learning_rate}")
    if args.decay_lr and args.lr_decay_iters <= args.warmup_iters:
        parser.error(f"--lr_decay_iters {args.lr_decay_iters} must exceed --warmup_iters "
                     f"{args.warmup_iters}")
    if args.optimizer != "adamw" and args.parallel == "fsdp":
        parser.error(f"--optimizer {args.optimizer} preconditions whole matrices and "
                     "--parallel fsdp shards them; use --parallel ddp")
    if args.dtype is None:
        args.dtype = "bfloat16" if args.device == "cuda" else "float32"
    if args.init_from not in ("scratch", "resume") and not (
            args.init_from.startswith("gpt2") or os.path.isdir(args.init_from)):
        parser.error(f"--init_from {args.init_from!r}: use scratch, resume, a GPT-2 name "
                     "(gpt2, gpt2-medium, gpt2-large, gpt2-xl) or a checkpoint folder")


def given_flags(argv: list[str] | None) -> set[str]:
    """The flags (argparse dests) that ``argv`` (None: ``sys.argv[1:]``) spells out, default
    or not, e.g. {'max_iters'} for ``--max_iters 400`` or ``--max_iters=400``."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def resume_flags(args: argparse.Namespace, given: set[str], saved: dict) -> list[str]:
    """Set ``args``' ``RESUME_FLAGS`` to the checkpoint's run flags ``saved`` (its
    ``config``), but those in ``given`` when ``args.override``, then ``check_args`` the
    result (exits naming the flags of a combination that cannot train); returns one line
    per given flag whose value differs from the checkpoint's, e.g. "--max_iters 400 (the
    checkpoint has 200)".  Without ``--override``, changed flags raise ValueError naming
    each."""
    changed = [f"--{name} {getattr(args, name)} (the checkpoint has {saved[name]})"
               for name in RESUME_FLAGS
               if name in given and name in saved and getattr(args, name) != saved[name]]
    if changed and not args.override:
        raise ValueError("--init_from resume continues the checkpoint's schedule and model, "
                         f"but {'; '.join(changed)}; drop the flag(s), or pass --override to "
                         "train on with the new values")
    for name in RESUME_FLAGS:
        if name in saved and not (args.override and name in given):
            setattr(args, name, saved[name])
    check_args(build_parser(), args)
    return changed


def check_device(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse ``--device cuda`` and ``--compare_devices`` where CUDA is not available, and
    ``--compile`` on the CPU without the C++ compiler inductor builds its kernels with."""
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but CUDA is not available; use --device cpu")
    compiler = os.environ.get("CXX", "g++")
    if args.compile and args.device == "cpu" and shutil.which(compiler) is None:
        parser.error(f"--compile on the CPU needs a C++ compiler and {compiler} is not on the "
                     "PATH: install one (apt-get install build-essential) or set CXX, or drop "
                     "--compile")
    if args.compare_devices and not torch.cuda.is_available():
        parser.error("--compare_devices needs a GPU, and CUDA is not available")


def get_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check pretrain.py's command line (exits with a message naming the flag);
    a resume's combinations are checked by ``resume_flags``, with the checkpoint's values."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.init_from != "resume":
        check_args(parser, args)
    check_device(parser, args)
    return args

"""Train a GPT-2 from scratch (or continue one) on a prepared corpus (handout 8).

    python data/prepare_lm.py --input ../shared/data/tinyshakespeare/input.txt \\
        --tokenizer bytes --out_dir data/shakespeare_char
    python pretrain.py                                    # the CPU default: a few minutes
    python pretrain.py --device cuda --n_layer 6 --n_head 6 --n_embd 384 --block_size 256 \\
        --batch_size 64 --max_iters 5000 --lr_decay_iters 5000 --dropout 0.2
    torchrun --nproc_per_node 4 pretrain.py --device cuda --gradient_accumulation_steps 4
    python pretrain.py --init_from resume                 # continue out_dir/ckpt.pt exactly

The flags are nanoGPT's (``--n_layer=4`` and ``--compile=False`` work too).  The out
folder gets ``metrics.jsonl`` (one row per logged step), ``loss.png`` and
``perplexity.png``, ``samples.txt`` (top-p samples from fixed prompts after training),
``ckpt.pt`` (the last checkpoint) and ``best.pt`` (the lowest validation loss); with
``--keep_checkpoints N`` also the last N evaluations' as ``ckpt_<iter>.pt``, which
``average_checkpoints.py --dir OUT --last N`` averages.
``--gradient_accumulation_steps`` counts micro-steps over all processes, as nanoGPT's.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import time
from dataclasses import asdict

import torch
from torch import nn

from config import BOOLEAN_SWITCHES, SWITCHES, GPT2Config
from models.generate import generate
from models.gpt2 import GPT2Model
from models.lm import CausalLM
from training import distributed
from training.args import (
    NON_NEGATIVE_FLOAT,
    NON_NEGATIVE_INT,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    PROBABILITY_BELOW_ONE,
    bounded,
)
from training.batches import TokenBatches
from training.checkpoint import load_checkpoint
from training.lm_data import bytes_per_token, load_lm_tokenizer, open_split, read_meta
from training.losses import after_optimizer_step, lm_cross_entropy, lm_losses
from training.plots import plot_metrics
from training.trainer import AUTOCAST_DTYPES, TrainConfig, Trainer

SAMPLE_PROMPTS = ("\n", "The ", "ROMEO:")  # samples.txt continues each of these
COMPARE_STEPS = 50  # --compare_devices times this many steps on each device
EVAL_SEED = 1234  # validation windows are the same at every evaluation
# GPT2Config's numeric research options, each a flag of the same name (validated by the config)
NUMERIC_OPTIONS = ("rope_theta", "rotary_fraction", "z_loss", "mu_loss")


def flag_bool(text: str) -> bool:
    """``True``/``False`` (nanoGPT's ``--compile=False``), also 1/0, yes/no."""
    values = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if text.lower() not in values:
        raise argparse.ArgumentTypeError(f"{text!r} is not True or False")
    return values[text.lower()]


def get_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pretrain.py", description=__doc__.split("\n")[0])
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
    add("--wandb_project", default="build-gpt2")
    add("--wandb_run_name", default=None)
    for name, allowed in SWITCHES.items():
        add(f"--{name}", default=getattr(GPT2Config, name), choices=allowed,
            help="architecture switch of config.py")
    for name in BOOLEAN_SWITCHES:
        add(f"--{name}", type=flag_bool, nargs="?", const=True,
            default=getattr(GPT2Config, name), help="research switch of config.py")
    for name in NUMERIC_OPTIONS:
        add(f"--{name}", type=float, default=getattr(GPT2Config, name),
            help="research option of config.py")
    args = parser.parse_args(argv)
    check_args(parser, args)
    return args


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
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but CUDA is not available; use --device cpu")
    compiler = os.environ.get("CXX", "g++")  # what inductor builds its CPU kernels with
    if args.compile and args.device == "cpu" and shutil.which(compiler) is None:
        parser.error(f"--compile on the CPU needs a C++ compiler and {compiler} is not on the "
                     "PATH: install one (apt-get install build-essential) or set CXX, or drop "
                     "--compile")
    if args.compare_devices and not torch.cuda.is_available():
        parser.error("--compare_devices needs a GPU, and CUDA is not available")
    if args.dtype is None:
        args.dtype = "bfloat16" if args.device == "cuda" else "float32"
    if args.init_from not in ("scratch", "resume") and not (
            args.init_from.startswith("gpt2") or os.path.isdir(args.init_from)):
        parser.error(f"--init_from {args.init_from!r}: use scratch, resume, a GPT-2 name "
                     "(gpt2, gpt2-medium, gpt2-large, gpt2-xl) or a checkpoint folder")


def build_model(args: argparse.Namespace, meta: dict) -> GPT2Model:
    """A fresh GPT-2 of the flags' shape, or the pretrained one ``--init_from`` names."""
    dropout = {"hidden_dropout_prob": args.dropout, "attention_probs_dropout_prob": args.dropout}
    switches = {name: getattr(args, name)
                for name in (*SWITCHES, *BOOLEAN_SWITCHES, *NUMERIC_OPTIONS)}
    try:
        if args.init_from == "scratch":
            return GPT2Model(GPT2Config(
                vocab_size=meta["vocab_size"], max_position_embeddings=args.block_size,
                hidden_size=args.n_embd, num_hidden_layers=args.n_layer,
                num_attention_heads=args.n_head, pad_token_id=meta["eot_token"] or 0,
                **dropout, **switches))
        model = GPT2Model.from_pretrained(args.init_from, **dropout, **switches)
    except ValueError as error:
        raise SystemExit(f"pretrain.py: {error}") from error
    except OSError as error:
        raise SystemExit(f"--init_from {args.init_from}: {error}") from error
    if meta["vocab_size"] > model.config.vocab_size:
        raise SystemExit(f"{args.data_dir} has {meta['vocab_size']} token ids but "
                         f"{args.init_from} knows {model.config.vocab_size}; prepare the data "
                         "with --tokenizer gpt2")
    if args.block_size > model.config.max_position_embeddings:
        raise SystemExit(f"--block_size {args.block_size} exceeds {args.init_from}'s context "
                         f"{model.config.max_position_embeddings}")
    return model


def lm_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean next-token cross-entropy.  batch: input_ids, targets [B, T]."""
    return lm_cross_entropy(model(batch["input_ids"]), batch["targets"])  # logits (B, T, V)


def make_loss(gpt: GPT2Model):
    """The training loss: the plain cross-entropy, or, when the config asks for z-loss or
    mu-loss, ``training.losses.lm_losses``' parts, so the log keeps the plain
    cross-entropy (``train_cross_entropy``) beside the regularised ``train_loss``."""
    config = gpt.config
    if not (config.z_loss or config.mu_loss):
        return lm_loss

    def loss_fn(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return lm_losses(config, model(batch["input_ids"]), batch["targets"],
                         gpt.output_weight)
    return loss_fn


def make_evaluate(args: argparse.Namespace, meta: dict, val, info, device):
    """evaluate(model) -> val_loss (mean over ``eval_iters`` micro-batches and the ranks)
    and bits_per_byte = val_loss / ln 2 / (UTF-8 bytes per token of the validation split)."""
    def evaluate(model: nn.Module) -> dict[str, float]:
        windows = TokenBatches(val, args.block_size, args.batch_size, args.eval_iters,
                               info.rank, info.world_size, EVAL_SEED, device, "val.bin")
        losses = torch.stack([lm_loss(model, batch) for batch in windows.next_step()])
        val_loss = float(distributed.mean_over_ranks(losses.mean().double()))
        bits = val_loss / math.log(2) / bytes_per_token(meta, "val")
        return {"val_loss": val_loss, "bits_per_byte": bits}
    return evaluate


def make_trainer(args: argparse.Namespace, meta: dict, model: GPT2Model, info,
                 device: torch.device, train, val, max_iters: int, wandb_run=None) -> Trainer:
    config = TrainConfig(
        max_iters=max_iters, learning_rate=args.learning_rate, min_lr=args.min_lr,
        warmup_iters=args.warmup_iters, lr_decay_iters=args.lr_decay_iters,
        decay_lr=args.decay_lr, weight_decay=args.weight_decay, beta1=args.beta1,
        beta2=args.beta2, grad_clip=args.grad_clip, eval_interval=args.eval_interval,
        log_interval=args.log_interval, dtype=args.dtype, compile=args.compile,
        parallel=args.parallel, out_dir=args.out_dir, keep_checkpoints=args.keep_checkpoints,
        checkpoint_prefix="gpt.")
    batches = TokenBatches(train, args.block_size, args.batch_size,
                           args.gradient_accumulation_steps // info.world_size, info.rank,
                           info.world_size, args.seed, device, "train.bin")
    return Trainer(CausalLM(model), config, make_loss(model), batches,
                   make_evaluate(args, meta, val, info, device), device, info,
                   model_args=asdict(model.config), run_config=vars(args), wandb_run=wandb_run,
                   after_step=lambda: after_optimizer_step(model.config, model.output_weight))


def write_samples(args: argparse.Namespace, meta: dict, state: dict, path: str) -> None:
    """Top-p samples of the trained model from ``SAMPLE_PROMPTS`` into ``path``."""
    gpt = GPT2Model(GPT2Config(**state["model_args"]))
    gpt.load_state_dict(state["model"])
    tokenizer = load_lm_tokenizer(args.data_dir)
    lines = []
    for index, prompt in enumerate(SAMPLE_PROMPTS):
        ids = tokenizer.encode(prompt)
        rows = generate(gpt, [ids] * args.num_samples, args.max_new_tokens, meta["eot_token"],
                        args.temperature, args.top_p, seed=args.seed + index)
        lines += [f"--- prompt {prompt!r}, sample {n + 1}\n{tokenizer.decode(ids + row)}\n"
                  for n, row in enumerate(rows)]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def compare_devices(args: argparse.Namespace, meta: dict, train, val) -> None:
    """Time ``COMPARE_STEPS`` training steps of the same model on the CPU and on the GPU."""
    seconds = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(args.seed)
        run = argparse.Namespace(**{**vars(args), "dtype": "bfloat16" if device == "cuda"
                                    else "float32", "compile": False})
        trainer = make_trainer(run, meta, build_model(run, meta), distributed.Distributed(),
                               torch.device(device), train, val, COMPARE_STEPS)
        trainer.train_step()  # warm-up: allocations, kernels
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(COMPARE_STEPS):
            trainer.train_step()
        if device == "cuda":
            torch.cuda.synchronize()
        seconds[device] = time.perf_counter() - start
    tokens = COMPARE_STEPS * args.batch_size * args.block_size * args.gradient_accumulation_steps
    print(f"{'device':<8} {'seconds':>9} {'ms/step':>9} {'tokens/s':>12}")
    for device, took in seconds.items():
        print(f"{device:<8} {took:>9.2f} {1000 * took / COMPARE_STEPS:>9.1f} "
              f"{tokens / took:>12,.0f}")
    print(f"GPU speed-up: {seconds['cpu'] / seconds['cuda']:.1f}x")


def main(argv: list[str] | None = None) -> dict:
    args = get_args(argv)
    try:
        meta = read_meta(args.data_dir)
        train, val = open_split(args.data_dir, "train"), open_split(args.data_dir, "val")
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"--data_dir: {error}") from error
    if args.compare_devices:
        compare_devices(args, meta, train, val)
        return {}
    info, device = distributed.setup(args.device, args.ddp_timeout)
    if args.gradient_accumulation_steps % info.world_size:
        raise SystemExit(f"--gradient_accumulation_steps {args.gradient_accumulation_steps} "
                         f"is not a multiple of the {info.world_size} processes (it counts "
                         "micro-steps over all of them, as nanoGPT's)")
    resume = None
    if args.init_from == "resume":
        resume = load_checkpoint(os.path.join(args.out_dir, "ckpt.pt"))
        model = GPT2Model(GPT2Config(**resume["model_args"]))
    else:
        torch.manual_seed(args.seed)  # the same initial weights on every rank
        model = build_model(args, meta)
    torch.manual_seed(args.seed + info.rank)  # dropout differs between ranks
    wandb_run = None
    if args.wandb_log and info.is_main:
        import wandb
        wandb_run = wandb.init(project=args.wandb_project, name=args.wandb_run_name,
                               config=vars(args), dir=args.out_dir)
    if info.is_main:
        os.makedirs(args.out_dir, exist_ok=True)
        print(f"[pretrain] {model.num_parameters() / 1e6:.2f}M parameters, {info.world_size} "
              f"process(es) on {device}, {meta['train_tokens']:,} training tokens")
    try:
        trainer = make_trainer(args, meta, model, info, device, train, val, args.max_iters,
                               wandb_run)
        result = trainer.run(resume_from=resume)
        final = trainer.checkpoint()  # every rank: FSDP gathers the weights
        if info.is_main:
            plot_metrics(os.path.join(args.out_dir, "metrics.jsonl"), args.out_dir)
            if args.num_samples:
                write_samples(args, meta, final, os.path.join(args.out_dir, "samples.txt"))
            print(f"[pretrain] best val loss {result['best']:.4f}; data wait "
                  f"{100 * result['data_wait_share']:.2f}% of step time; out: {args.out_dir}")
    finally:
        if wandb_run is not None:
            wandb_run.finish()
        distributed.teardown()
    return result


if __name__ == "__main__":
    main()

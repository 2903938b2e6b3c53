"""Train a GPT-2 from scratch (or continue one) on a prepared corpus (handout 8).

    python data/prepare_lm.py --tokenizer bytes --out_dir data/shakespeare_char  # Tiny Shakespeare
    python pretrain.py                                    # the CPU default: a few minutes
    python pretrain.py --device cuda --n_layer 6 --n_head 6 --n_embd 384 --block_size 256 \\
        --batch_size 64 --max_iters 5000 --lr_decay_iters 5000 --dropout 0.2
    torchrun --nproc_per_node 4 pretrain.py --device cuda --gradient_accumulation_steps 4
    python pretrain.py --init_from resume                 # continue out_dir/ckpt.pt exactly
    python pretrain.py --init_from resume --max_iters 4000 --override   # train on, longer

The flags are nanoGPT's (``--n_layer=4`` and ``--compile=False`` work too), declared in
``training/pretrain_flags.py`` (``sweep.py`` checks its grid files against the same parser).  The out
folder gets ``metrics.jsonl`` (one row per logged step), ``loss.png`` and
``perplexity.png``, ``samples.txt`` (top-p samples after training, from ``--sample_prompts``,
with the settings and weights used),
``ckpt.pt`` (the last checkpoint) and ``best.pt`` (the lowest validation loss); with
``--keep_checkpoints N`` also the last N evaluations' as ``ckpt_<iter>.pt``, which
``average_checkpoints.py --dir OUT --last N`` averages.
A resume keeps the checkpoint's schedule and model flags; one given with another value is
refused, naming it, unless ``--override`` (then each change is printed).
``--gradient_accumulation_steps`` counts micro-steps over all processes, as nanoGPT's.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import asdict

import torch
from torch import nn

from config import BOOLEAN_SWITCHES, SWITCHES, GPT2Config
from models.generate import generate
from models.gpt2 import GPT2Model
from models.lm import CausalLM
from training import distributed
from training.args import optimizer_options
from training.batches import TokenBatches
from training.checkpoint import CheckpointError, CheckpointNotFound, load_checkpoint
from training.lm_data import bytes_per_token, load_lm_tokenizer, open_split, read_meta
from training.losses import after_optimizer_step, lm_cross_entropy, lm_losses
from training.plots import plot_metrics
from training.pretrain_flags import (
    COMPARE_STEPS,
    MODEL_FLAGS,
    NUMERIC_OPTIONS,
    WINDOW_OPTIONS,
    get_args,
    given_flags,
    resume_flags,
)
from training.trainer import TrainConfig, Trainer

EVAL_SEED = 1234  # validation windows are the same at every evaluation
# a shape flag -> its GPT2Config field (the switches and options share their names)
CONFIG_FIELDS = {"n_layer": "num_hidden_layers", "n_head": "num_attention_heads",
                 "n_embd": "hidden_size", "block_size": "max_position_embeddings"}


def build_model(args: argparse.Namespace, meta: dict) -> GPT2Model:
    """A fresh GPT-2 of the flags' shape, or the pretrained one ``--init_from`` names."""
    dropout = {"hidden_dropout_prob": args.dropout, "attention_probs_dropout_prob": args.dropout}
    switches = {name: getattr(args, name)
                for name in (*SWITCHES, *BOOLEAN_SWITCHES, *NUMERIC_OPTIONS, *WINDOW_OPTIONS)}
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


def read_resume(args: argparse.Namespace, argv: list[str] | None) -> tuple[dict, GPT2Model]:
    """The checkpoint ``out_dir/ckpt.pt`` and its model (with its weights), ``args`` set to
    its schedule and model flags (``training.pretrain_flags.resume_flags``: changed flags are
    refused unless ``--override``, and then printed and applied to the model's config; a
    shape the weights do not have is refused even then).  Exits naming the file or the
    flags."""
    path = os.path.join(args.out_dir, "ckpt.pt")
    try:
        resume = load_checkpoint(path, keys=("model", "model_args", "config"))
        changed = resume_flags(args, given_flags(argv), resume["config"])
    except CheckpointNotFound as error:
        raise SystemExit(f"--init_from resume: {path} not found; train first with "
                         f"--out_dir {args.out_dir}, or pass the --out_dir of the run") from error
    except (CheckpointError, ValueError) as error:
        raise SystemExit(f"pretrain.py: {error}") from error
    overrides = {}
    for line in changed:
        print(f"[pretrain] resume with --override: {line}")
    for name in MODEL_FLAGS:
        if name in resume["config"] and resume["config"][name] != getattr(args, name):
            if name == "dropout":
                overrides.update(hidden_dropout_prob=args.dropout,
                                 attention_probs_dropout_prob=args.dropout)
            else:
                overrides[CONFIG_FIELDS.get(name, name)] = getattr(args, name)
    try:
        model = GPT2Model(GPT2Config(**{**resume["model_args"], **overrides}))
        model.load_state_dict(resume["model"])
    except ValueError as error:
        raise SystemExit(f"pretrain.py: {error}") from error
    except RuntimeError as error:  # load_state_dict: the weights' shapes or names differ
        raise SystemExit(f"--init_from resume --override: the weights of {path} do not fit "
                         f"the model of the new flags ({'; '.join(changed)}): "
                         f"{str(error).splitlines()[-1].strip()}") from error
    return resume, model


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
        checkpoint_prefix="gpt.", **optimizer_options(args))
    batches = TokenBatches(train, args.block_size, args.batch_size,
                           args.gradient_accumulation_steps // info.world_size, info.rank,
                           info.world_size, args.seed, device, "train.bin")
    return Trainer(CausalLM(model), config, make_loss(model), batches,
                   make_evaluate(args, meta, val, info, device), device, info,
                   model_args=asdict(model.config), run_config=vars(args), wandb_run=wandb_run,
                   after_step=lambda: after_optimizer_step(model.config, model.output_weight))


def write_samples(args: argparse.Namespace, meta: dict, state: dict, path: str) -> None:
    """Top-p samples of the trained model from ``--sample_prompts`` into ``path``, after a
    header naming the weights (the run's final state) and the sampling settings."""
    gpt = GPT2Model(GPT2Config(**state["model_args"]))
    gpt.load_state_dict(state["model"])
    tokenizer = load_lm_tokenizer(args.data_dir)
    lines = [f"# weights: the final state of {args.out_dir} at iter {state['iter_num']} "
             f"(resample: python sample.py --out_dir {args.out_dir})\n"
             f"# temperature={args.temperature} top_p={args.top_p} "
             f"max_new_tokens={args.max_new_tokens} num_samples={args.num_samples} "
             f"seed={args.seed} (prompt i: seed + i)\n"]
    for index, prompt in enumerate(args.sample_prompts):
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
        resume, model = read_resume(args, argv)
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
        try:
            result = trainer.run(resume_from=resume)
        except CheckpointError as error:
            raise SystemExit(f"--init_from resume: {error}") from error
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

"""The one training loop.  It knows nothing about a task (minGPT's ``Trainer`` is the model):
a script hands it a model, a batch source (``training.batches``), a loss and an evaluation,
and gets the optimizer, the schedule, mixed precision, gradient accumulation and clipping,
evaluation every N steps, the metrics log, the best and last checkpoints and exact resume.

One optimizer step (``TrainConfig`` names the knobs, with nanoGPT's flag names):
1. lr from ``training.schedule.lr_at`` (warmup, cosine to ``min_lr``);
2. for each micro-batch of the step: ``loss_fn(model, batch) / micro-batches``, backward
   (under bf16 autocast on a GPU when ``dtype="bfloat16"``; fp32 on the CPU), gradients
   all-reduced on the last micro-batch only;
3. clip the global gradient norm to ``grad_clip`` (0: measure it only), a step of each
   optimizer (``training.optimizers``: AdamW, or Muon or Shampoo on the blocks' matrices
   beside it), then ``after_step()`` (e.g. mu-centering of the output embedding).
Every ``log_interval`` steps rank 0 writes one metrics row; every ``eval_interval`` steps
(and at the last) it evaluates, prints one line and saves the checkpoints.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from training import distributed
from training.checkpoint import (
    CheckpointError,
    kept_name,
    prune_kept,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from training.metrics import MetricsLog
from training.optimizers import (
    MUON_LR,
    OPTIMIZERS,
    SHAMPOO_EPS,
    SHAMPOO_LR,
    SHAMPOO_UPDATE_EVERY,
    build_optimizers,
    describe_optimizers,
)
from training.schedule import lr_at

AUTOCAST_DTYPES = {"float32": None, "bfloat16": torch.bfloat16}  # --dtype -> autocast dtype
IMPROVES = {"min": lambda new, best: new < best, "max": lambda new, best: new > best}


@dataclass
class TrainConfig:
    max_iters: int  # optimizer steps
    learning_rate: float = 6e-4  # peak lr, after warmup
    min_lr: float = 6e-5  # the floor of the cosine decay
    warmup_iters: int = 0  # linear warmup steps
    lr_decay_iters: int | None = None  # the step where the cosine reaches min_lr (None: max_iters)
    decay_lr: bool = True  # False: learning_rate at every step
    weight_decay: float = 0.1  # on tensors of 2 or more dimensions only
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8  # AdamW's epsilon
    optimizer: str = "adamw"  # or "muon" / "shampoo" on the blocks' matrices (OPTIMIZERS)
    muon_lr: float = MUON_LR  # the matrices' peak lr with Muon
    shampoo_lr: float = SHAMPOO_LR  # the matrices' peak lr with Shampoo
    shampoo_update_every: int = SHAMPOO_UPDATE_EVERY  # steps between Shampoo's inverse roots
    shampoo_eps: float = SHAMPOO_EPS  # Shampoo's eps: (L + eps I)^(-1/4)
    grad_clip: float = 1.0  # max global gradient norm; 0 = no clipping
    eval_interval: int = 250  # evaluate (and save) every N steps, and after the last
    eval_at_start: bool = True  # also evaluate before the first step
    log_interval: int = 10  # a metrics row every N steps
    dtype: str = "bfloat16"  # autocast dtype on a GPU: "bfloat16" or "float32"
    compile: bool = False  # torch.compile the model
    compile_backend: str = "inductor"  # torch.compile's backend ("aot_eager": no C++ compiler)
    parallel: str = "ddp"  # several processes: "ddp" or "fsdp" (training.distributed.WRAPPERS)
    out_dir: str = "out"
    last_name: str | None = "ckpt.pt"  # the last checkpoint (None: not kept)
    best_name: str = "best.pt"  # the best checkpoint by best_metric
    keep_checkpoints: int = 0  # also keep the last N evaluations' as ckpt_<iter>.pt (0: none)
    metrics_name: str = "metrics.jsonl"
    best_metric: str = "val_loss"  # a key of what evaluate returns
    best_mode: str = "min"  # "min" or "max" (IMPROVES)
    save_optimizer: bool = True  # False: checkpoints hold the model only
    checkpoint_prefix: str = ""  # only model keys under this prefix are saved, without it
    progress: bool = True  # a tqdm bar

    def __post_init__(self) -> None:
        if self.dtype not in AUTOCAST_DTYPES:
            raise ValueError(f"dtype {self.dtype!r}; choose one of {list(AUTOCAST_DTYPES)} "
                             "(float16 would need loss scaling; bfloat16 does not)")
        if self.best_mode not in IMPROVES:
            raise ValueError(f"best_mode {self.best_mode!r}; choose one of {list(IMPROVES)}")
        if self.parallel not in distributed.WRAPPERS:
            raise ValueError(f"parallel {self.parallel!r}; choose one of "
                             f"{list(distributed.WRAPPERS)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r}; choose one of {list(OPTIMIZERS)}")
        if self.optimizer != "adamw" and self.parallel == "fsdp":
            raise ValueError(f"optimizer {self.optimizer!r} preconditions whole matrices, and "
                             "parallel 'fsdp' shards them; use parallel 'ddp'")
        if self.keep_checkpoints < 0:
            raise ValueError(f"keep_checkpoints {self.keep_checkpoints}; use 0 (none) or more")
        if self.lr_decay_iters is None:
            self.lr_decay_iters = self.max_iters


def autocast(device: torch.device, dtype: str = "bfloat16"):
    """Autocast to ``dtype`` on a GPU (``AUTOCAST_DTYPES``); nothing on the CPU (fp32)."""
    if device.type == "cuda" and AUTOCAST_DTYPES[dtype] is not None:
        return torch.autocast(device_type="cuda", dtype=AUTOCAST_DTYPES[dtype])
    return contextlib.nullcontext()


def count_tokens(batch: Any) -> int | torch.Tensor:
    """Tokens in a micro-batch: the real ones under ``attention_mask`` (a 0-d tensor on its
    device, so that counting does not wait for the device), else all (an int)."""
    if "attention_mask" in batch:
        return batch["attention_mask"].sum()
    return batch["input_ids"].numel()


class Trainer:
    """``Trainer(model, config, loss_fn, batches, evaluate).run()``.

    - ``loss_fn(model, micro_batch) -> scalar loss``: calls ``model`` (which may be wrapped
      by DDP, FSDP or ``torch.compile``) through its ``forward``; it may instead return
      ``{'loss': scalar, part: scalar, ...}``, and each part's step mean is logged as
      ``train_<part>`` beside ``train_loss`` (e.g. the plain cross-entropy beside a
      regularised loss);
    - ``after_step()``, called after every optimizer step (None: nothing);
    - ``batches``: ``next_step()``, ``state_dict()``, ``load_state_dict()``;
    - ``evaluate(model) -> {name: float}``, run on every rank, in eval mode, without
      gradients; it returns ``config.best_metric`` (and ``val_loss``, ``bits_per_byte``
      where they apply), and every metric it returns goes into that step's metrics row;
      None: no evaluation, no best checkpoint;
    - ``describe(row) -> str``, the line printed per evaluation (default: step, losses);
    - ``model_args`` and ``run_config`` go into every checkpoint as they are;
    - ``select_state(state) -> state``: the part of the model's state dict that checkpoints
      keep (default: all of it; ``training.peft.checkpoint_state`` keeps LoRA's adapters and
      the head); a checkpoint of a part resumes onto the model's other weights as they are.
    """

    def __init__(self, model: nn.Module, config: TrainConfig,
                 loss_fn: Callable[[nn.Module, Any], torch.Tensor], batches: Any,
                 evaluate: Callable[[nn.Module], dict[str, float]] | None,
                 device: torch.device | str = "cpu",
                 dist: distributed.Distributed | None = None,
                 model_args: dict[str, Any] | None = None,
                 run_config: dict[str, Any] | None = None,
                 describe: Callable[[dict[str, Any]], str] | None = None, wandb_run=None,
                 after_step: Callable[[], None] | None = None,
                 select_state: Callable[[dict[str, Any]], dict[str, Any]] | None = None):
        self.config, self.loss_fn, self.batches, self.evaluate = config, loss_fn, batches, evaluate
        self.after_step = after_step
        self.device, self.dist = torch.device(device), dist or distributed.Distributed()
        self.model_args, self.run_config = model_args or {}, run_config or {}
        self.describe, self.wandb_run = describe or describe_step, wandb_run
        self.select_state = select_state
        model = model.to(self.device)
        if self.dist.enabled:
            model = distributed.WRAPPERS[config.parallel](model, self.device)
        self.model = torch.compile(model, backend=config.compile_backend) if config.compile \
            else model
        self.optimizers = build_optimizers(self.model, config)
        if len(self.optimizers) > 1 and self.dist.is_main:
            print(describe_optimizers(self.optimizers), flush=True)
        self.out_dir = Path(config.out_dir)
        self.iter_num, self.tokens, self.elapsed = 0, 0, 0.0
        self.best: float | None = None
        self.last_metrics: dict[str, Any] = {}
        self.data_time = self.step_time = 0.0
        self.loss_parts: list[str] = []  # names of loss_fn's parts, as of the last step

    # --- checkpoints ------------------------------------------------------------------

    # torch.distributed.checkpoint is imported where it is used: importing it takes about
    # 1.5 s, which every task script and every autograder child would pay at start-up.

    def checkpoint(self) -> dict[str, Any]:
        """This run's state as a checkpoint dict.  Collective (FSDP gathers the shards)."""
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
            get_optimizer_state_dict,
        )

        full = StateDictOptions(full_state_dict=True, cpu_offload=True)
        prefix = self.config.checkpoint_prefix
        model_state = {k[len(prefix):]: v for k, v in
                       get_model_state_dict(self.model, options=full).items()
                       if k.startswith(prefix)}
        if self.select_state is not None:
            model_state = self.select_state(model_state)
        optimizer = (get_optimizer_state_dict(self.model, self.optimizers, options=full)
                     if self.config.save_optimizer else None)
        return {"model": model_state, "optimizer": optimizer, "model_args": self.model_args,
                "iter_num": self.iter_num, "best_val_loss": self.best,
                "best_metric": self.config.best_metric, "config": self.run_config,
                "rng": distributed.gather_objects(self.dist, rng_state()),
                "data": self.batches.state_dict(), "tokens": self.tokens,
                "elapsed_s": self.elapsed}

    def load(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint of ``checkpoint()``: model, optimizer, step, best
        value, random states and data position; the metrics log keeps its rows up to here.
        Raises ``CheckpointError`` (a ValueError) for a checkpoint without optimizer state or
        written by another number of processes."""
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        prefix = self.config.checkpoint_prefix
        set_model_state_dict(self.model, {prefix + k: v for k, v in state["model"].items()},
                             options=StateDictOptions(full_state_dict=True,
                                                      strict=self.select_state is None))
        if state.get("optimizer") is None:
            raise CheckpointError("the checkpoint has no optimizer state, so training cannot resume "
                             "from it exactly; start from its weights instead")
        set_optimizer_state_dict(self.model, self.optimizers, state["optimizer"],
                                 options=StateDictOptions(full_state_dict=True))
        self.iter_num, self.best = state["iter_num"], state["best_val_loss"]
        self.tokens, self.elapsed = state["tokens"], state["elapsed_s"]
        rngs = state["rng"]
        if len(rngs) != self.dist.world_size:
            raise CheckpointError(f"the checkpoint was written by {len(rngs)} process(es); resume "
                             f"it with as many (this run has {self.dist.world_size})")
        set_rng_state(rngs[self.dist.rank])
        self.batches.load_state_dict(state["data"])

    def save(self, *names: str) -> None:
        """Write this run's checkpoint under each of ``names`` in ``out_dir`` (rank 0);
        every rank calls it (FSDP gathers the shards)."""
        state = self.checkpoint()
        if self.dist.is_main:
            for name in names:
                save_checkpoint(state, self.out_dir / name)

    # --- the loop ---------------------------------------------------------------------

    def train_step(self) -> tuple[torch.Tensor, torch.Tensor, int | torch.Tensor]:
        """One optimizer step.  Returns (the step's mean losses [1 + parts], float64,
        gradient norm, tokens: an int, or a 0-d tensor when the batches carry an
        attention mask); the tensors stay on the device (no synchronisation until a row is
        logged).  The losses are ``loss`` then the parts of ``loss_fn``'s dict, in
        ``self.loss_parts`` order."""
        config = self.config
        lr = lr_at(self.iter_num, config.learning_rate, config.min_lr, config.warmup_iters,
                   config.lr_decay_iters, config.decay_lr)
        for optimizer in self.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = lr * group["lr_scale"]
        start = time.perf_counter()
        micro_batches = self.batches.next_step()
        self.data_time += time.perf_counter() - start
        step_losses = None
        tokens = 0
        count = len(micro_batches)
        for index, batch in enumerate(micro_batches):
            with distributed.gradient_sync(self.model, enabled=index == count - 1):
                with autocast(self.device, config.dtype):
                    losses = self.loss_fn(self.model, batch)
                    if not isinstance(losses, dict):
                        losses = {"loss": losses}
                (losses["loss"] / count).backward()
            self.loss_parts = [name for name in losses if name != "loss"]
            with torch.no_grad():
                values = torch.stack([losses["loss"]] + [losses[name] for name in
                                                         self.loss_parts]).double()
            step_losses = values if step_losses is None else step_losses + values
            tokens += count_tokens(batch)
        step_losses = step_losses / count
        parameters = [p for p in self.model.parameters() if p.grad is not None]
        if config.grad_clip:
            grad_norm = torch.nn.utils.clip_grad_norm_(parameters, config.grad_clip)
        else:  # measured for the log only
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in parameters])
        if hasattr(grad_norm, "full_tensor"):  # FSDP: a DTensor
            grad_norm = grad_norm.full_tensor()
        for optimizer in self.optimizers:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if self.after_step is not None:
            self.after_step()
        return step_losses, grad_norm.detach(), tokens

    @torch.no_grad()
    def run_evaluation(self) -> dict[str, float]:
        if self.evaluate is None:
            return {}
        self.model.eval()
        with autocast(self.device, self.config.dtype):
            metrics = self.evaluate(self.model)
        self.model.train()
        return metrics

    def run(self, resume_from: dict[str, Any] | None = None) -> dict[str, Any]:
        """Train to ``max_iters`` (from a checkpoint dict when given); returns the last
        evaluation's row plus ``best`` and ``data_wait_share``."""
        config = self.config
        if resume_from is not None:
            self.load(resume_from)
        log = (MetricsLog(self.out_dir / config.metrics_name, keep_through=self.iter_num,
                          wandb_run=self.wandb_run) if self.dist.is_main else None)
        self.model.train()
        if config.eval_at_start and self.iter_num == 0:
            self._evaluate_and_log(log, None)
        since, tokens_since = None, 0  # sums since the last row: the losses; the tokens
        steps_since, start = 0, time.perf_counter() - self.elapsed
        last_row_time = time.perf_counter()
        progress = distributed.Progress(self.dist)
        bar = tqdm(total=config.max_iters, initial=self.iter_num, desc="train",
                   disable=not (config.progress and self.dist.is_main), leave=False)
        shown: dict[str, str] = {}  # on the bar: the last logged train loss, the last val_loss
        try:
            while self.iter_num < config.max_iters:
                progress.mark(f"was at step {self.iter_num}")
                step_start = time.perf_counter()
                loss, grad_norm, tokens = self.train_step()
                self.step_time += time.perf_counter() - step_start
                self.iter_num += 1
                since = loss if since is None else since + loss
                tokens_since = tokens_since + tokens
                steps_since += 1
                bar.update(1)
                evaluating = (self.iter_num % config.eval_interval == 0
                              or self.iter_num == config.max_iters)
                if evaluating or self.iter_num % config.log_interval == 0:
                    sums = torch.cat([torch.as_tensor(tokens_since, dtype=torch.float64,
                                                      device=self.device).reshape(1), since])
                    token_sum, *loss_sums = (distributed.mean_over_ranks(sums)
                                             * self.dist.world_size).tolist()
                    self.tokens += int(token_sum)
                    self.elapsed = time.perf_counter() - start
                    now = time.perf_counter()
                    means = [s / self.dist.world_size / steps_since for s in loss_sums]
                    train = {"train_loss": means[0],
                             **{f"train_{name}": value
                                for name, value in zip(self.loss_parts, means[1:], strict=True)},
                             "tokens_per_s": token_sum / (now - last_row_time),
                             "grad_norm": float(grad_norm)}
                    since, tokens_since = None, 0
                    steps_since = 0
                    shown["loss"] = f"{means[0]:.4f}"
                    if evaluating:
                        self._evaluate_and_log(log, train)
                        if self.last_metrics.get("val_loss") is not None:
                            shown["val_loss"] = f"{self.last_metrics['val_loss']:.4f}"
                    else:
                        self._write_row(log, train, {})
                    bar.set_postfix(shown, refresh=False)
                    last_row_time = time.perf_counter()
        except (RuntimeError, torch.distributed.DistBackendError) as error:
            progress.mark(f"failed at step {self.iter_num} ({type(error).__name__})")
            if self.dist.enabled:
                raise distributed.RankFailure(self.dist, error, progress) from error
            raise
        except BaseException as error:
            progress.mark(f"left at step {self.iter_num} ({type(error).__name__})")
            raise
        finally:
            bar.close()
        progress.mark(f"finished at step {self.iter_num}")
        total = self.data_time + self.step_time
        return {**self.last_metrics, "best": self.best,
                "data_wait_share": self.data_time / total if total else 0.0}

    def _evaluate_and_log(self, log: MetricsLog | None, train: dict[str, float] | None) -> None:
        """Evaluate, write the row, print the line, save the best, last and kept
        checkpoints (and delete kept ones beyond ``keep_checkpoints``)."""
        metrics = self.run_evaluation()
        value = metrics.get(self.config.best_metric)
        improved = self.iter_num > 0 and value is not None and (
            self.best is None or IMPROVES[self.config.best_mode](value, self.best))
        if improved:
            self.best = value
        row = self._write_row(log, train or {}, metrics)
        self.last_metrics = {**row, **metrics, "improved": improved}
        if self.dist.is_main:
            print(self.describe(self.last_metrics), flush=True)
        if self.iter_num > 0:
            config = self.config
            names = ([config.best_name] if improved else []) + \
                    ([config.last_name] if config.last_name else []) + \
                    ([kept_name(self.iter_num)] if config.keep_checkpoints else [])
            if names:
                self.save(*names)
            if config.keep_checkpoints and self.dist.is_main:
                prune_kept(self.out_dir, config.keep_checkpoints)

    def _write_row(self, log: MetricsLog | None, train: dict[str, float],
                   metrics: dict[str, float]) -> dict[str, Any]:
        """The metrics row of this step (``training.metrics``): the training figures since
        the last row, and all that ``metrics`` (an evaluation's, or {}) holds."""
        val_loss = metrics.get("val_loss")
        config = self.config
        lr = lr_at(max(self.iter_num - 1, 0), config.learning_rate, config.min_lr,
                   config.warmup_iters, config.lr_decay_iters, config.decay_lr)
        row = {"iter": self.iter_num, "tokens": self.tokens, "lr": lr,  # of the last step
               "train_loss": train.get("train_loss"), "val_loss": val_loss,
               "perplexity": None if val_loss is None else math.exp(min(val_loss, 700.0)),
               "bits_per_byte": metrics.get("bits_per_byte"),
               "tokens_per_s": train.get("tokens_per_s"), "grad_norm": train.get("grad_norm"),
               "time_s": self.elapsed,
               **{f"train_{name}": train.get(f"train_{name}") for name in self.loss_parts}}
        row.update({name: value for name, value in metrics.items() if name not in row})
        if log is not None:
            log.write(row)
        return row


def describe_step(row: dict[str, Any]) -> str:
    """The default line per evaluation: step, losses, perplexity, speed."""
    parts = [f"step {row['iter']}"]
    if row["train_loss"] is not None:
        parts.append(f"train loss {row['train_loss']:.4f}")
    if row["val_loss"] is not None:
        parts.append(f"val loss {row['val_loss']:.4f}, perplexity {row['perplexity']:.2f}")
    if row["bits_per_byte"] is not None:
        parts.append(f"bits/byte {row['bits_per_byte']:.4f}")
    if row["tokens_per_s"] is not None:
        parts.append(f"{row['tokens_per_s']:,.0f} tokens/s")
    return ", ".join(parts) + (" (best, saved)" if row["improved"] else "")

"""Fine-tuning on labelled examples with the one loop: what the Part 2 scripts share.

Each script brings its model (logits from ``forward(input_ids, attention_mask)``), its
examples and its ``collate``; this module gives the loaders, the seeding, the loss, the
predictions, ``fit`` (``epochs`` passes of the ``Trainer`` at a constant learning rate:
AdamW, or ``--optimizer muon|shampoo`` on the blocks' matrices beside it; no weight decay,
no clipping, bf16 autocast with ``--use_gpu``; evaluated after every epoch),
``fit_and_write`` (fit a classifier on dev accuracy, then predict every split with its best
checkpoint and hand the predictions to the script's writer) and the scripts' ensemble mode
(``ensemble_members``, and ``predict_and_write`` with the members' mean probabilities,
``ensemble_probabilities``, handout 7.9).  The metric and the file format are the script's
(``evaluation.py``): this module knows no task.
"""

from __future__ import annotations

import argparse
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from modules.lora import merge_lora
from modules.quantize import model_bytes, quantize_model
from training.args import optimizer_options
from training.batches import LoaderBatches
from training.checkpoint import load_checkpoint
from training.peft import checkpoint_state, load_weights
from training.smart import Smart
from training.trainer import TrainConfig, Trainer, autocast


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_loader(examples: list, collate_fn: Callable, batch_size: int, shuffle: bool = False,
                seed: int = 0) -> DataLoader:
    """Batches of ``collate_fn(examples)``, reshuffled each epoch from ``seed`` when asked."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(examples, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      collate_fn=collate_fn)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The tensors of a collated batch moved to ``device`` (ids and other fields as they are)."""
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def classification_loss(model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    """Cross-entropy of ``model``'s class logits [B, C] against ``labels`` [B]."""
    logits = model(batch["input_ids"], batch["attention_mask"])  # (B, C)
    return F.cross_entropy(logits.float(), batch["labels"])


@torch.no_grad()
def predict_logits(model: nn.Module, loader: DataLoader, device: torch.device,
                   description: str = "eval") -> tuple[list[str], torch.Tensor, list[int]]:
    """Returns (ids, class logits [N, C] (float32, on the CPU), gold labels (-1 where
    unlabelled))."""
    model.eval()
    ids, logits, gold = [], [], []
    for batch in tqdm(loader, desc=description, leave=False):
        with autocast(device):
            batch_logits = model(batch["input_ids"].to(device),
                                 batch["attention_mask"].to(device))
        logits.append(batch_logits.float().cpu())  # (B, C)
        gold += batch["labels"].tolist()
        ids += batch["ids"]
    return ids, torch.cat(logits), gold


def predict(model: nn.Module, loader: DataLoader, device: torch.device,
            description: str = "eval") -> tuple[list[str], list[int], list[int]]:
    """Returns (ids, predicted labels (the most probable class: the largest logit), gold
    labels (-1 where unlabelled))."""
    ids, logits, gold = predict_logits(model, loader, device, description)
    return ids, logits.argmax(dim=-1).tolist(), gold


def fit(model: nn.Module, loader: DataLoader, loss_fn: Callable, name: str,
        args: argparse.Namespace, device: torch.device, lr: float,
        evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
        describe: Callable[[dict[str, Any]], str] | None = None, best_metric: str = "dev_acc",
        best_name: str | None = None, last_name: str | None = None,
        log_interval: int | None = None,
        after_step: Callable[[], None] | None = None) -> dict[str, Any]:
    """Train ``args.epochs`` epochs of ``loader`` on the one loop, evaluating after each.

    ``loss_fn(model, batch)`` receives the batch with its tensors on ``device``.  With
    ``evaluate`` the checkpoint with the highest ``best_metric`` is kept in
    ``args.checkpoint_dir/best_name``; with ``last_name`` the last epoch's in
    ``args.checkpoint_dir/last_name``.  Checkpoints hold the model only, as
    ``training.peft.checkpoint_state`` selects it for ``args.peft`` (with LoRA: the adapters
    and the head).  Every epoch (or every ``log_interval`` steps) logs a row to
    ``args.checkpoint_dir/<name>-metrics.jsonl``, with what ``evaluate`` returned (e.g.
    ``dev_acc``, ``dev_f1``); a ``loss_fn`` that returns {'loss', part: ...} logs each part
    as ``train_<part>``.  ``after_step()`` runs after every optimizer
    step.  Returns the last epoch's row.
    """
    steps = len(loader)
    config = TrainConfig(
        max_iters=args.epochs * steps, learning_rate=lr, decay_lr=False, weight_decay=0.0,
        beta1=0.9, beta2=0.999, eps=1e-6, grad_clip=0.0, eval_interval=steps,
        eval_at_start=False, log_interval=log_interval or steps, out_dir=args.checkpoint_dir,
        last_name=last_name, best_name=best_name or f"{name}-best.pt",
        metrics_name=f"{name}-metrics.jsonl", best_metric=best_metric, best_mode="max",
        save_optimizer=False, **optimizer_options(args))
    gpt = getattr(model, "gpt", model)
    trainer = Trainer(model, config, lambda m, batch: loss_fn(m, to_device(batch, device)),
                      LoaderBatches(loader), evaluate, device,
                      model_args=asdict(gpt.config), run_config=vars(args),
                      describe=describe or (lambda row: epoch_line(name, row, args.epochs,
                                                                   steps)),
                      select_state=partial(checkpoint_state, model, args.peft),
                      after_step=after_step)
    return trainer.run()


def epoch_line(name: str, row: dict[str, Any], epochs: int, steps: int) -> str:
    """``[name] epoch k/N: train loss L`` (and its logged parts, e.g. ``smart 0.0012``), and
    any dev metrics of the row."""
    line = f"[{name}] epoch {row['iter'] // steps}/{epochs}: train loss {row['train_loss']:.4f}"
    parts = [f"{key.removeprefix('train_').replace('_', '-')} {value:.4g}"
             for key, value in row.items()
             if key.startswith("train_") and key != "train_loss" and value is not None]
    line += f" ({', '.join(parts)})" if parts else ""
    if "dev_acc" in row:
        line += f", dev acc {row['dev_acc']:.4f}, dev macro-F1 {row['dev_f1']:.4f}"
    return line + (" (best, saved)" if row["improved"] else "")


def quantize_for_eval(model: nn.Module, args: argparse.Namespace, name: str) -> nn.Module:
    """``--quantize``: merge any LoRA adapters, then ``quantize_model(model, args.quantize)``
    in place, printing the bytes before and after; the model as it was with "none"."""
    if args.quantize == "none":
        return model
    merge_lora(model)
    before = model_bytes(model)
    quantize_model(model, args.quantize)
    print(f"[{name}] quantized {args.quantize}: {before / 2**20:.1f} MiB -> "
          f"{model_bytes(model) / 2**20:.1f} MiB")
    return model


def fit_and_write(model: nn.Module, train_loader: DataLoader, splits: dict[str, list],
                  collate_fn: Callable, name: str, checkpoint_name: str,
                  args: argparse.Namespace, device: torch.device, lr: float,
                  score: Callable[[list[int], list[int]], tuple[float, float]],
                  write: Callable[[str, list[str], list[int]], None],
                  outputs: dict[str, str] | None = None) -> dict:
    """Train a classifier, keeping the checkpoint with the best dev accuracy
    (``args.checkpoint_dir/checkpoint_name``); then, with it (quantized by ``--quantize``,
    ``quantize_for_eval``), predict each split and
    ``write(outputs[split], ids, predictions)`` (default path:
    ``<args.out_dir>/<name>-<split>-output.csv``).  Returns {'dev_acc', 'dev_f1'}.

    The loss is the cross-entropy of ``model``'s class logits, plus SMART's terms when
    ``args.smart_weight`` or ``args.bregman_weight`` is set (``training.smart``).
    ``splits`` holds the "dev" (labelled) and "test" examples; ``score(gold, predicted)``
    gives (accuracy, macro-F1), e.g. ``evaluation.accuracy_f1``; ``write`` writes a
    prediction file, e.g. ``evaluation.write_predictions``.
    """
    dev_loader = make_loader(splits["dev"], collate_fn, args.eval_batch_size)

    def evaluate(model: nn.Module) -> dict[str, float]:
        _, predictions, gold = predict(model, dev_loader, device, f"{name} dev")
        accuracy, f1 = score(gold, predictions)
        return {"dev_acc": accuracy, "dev_f1": f1}

    loss_fn, after_step = classification_loss, None
    if args.smart_weight or args.bregman_weight:
        smart = Smart(model, args)
        loss_fn, after_step = smart.loss, smart.after_step
    fit(model, train_loader, loss_fn, name, args, device, lr, evaluate,
        best_name=checkpoint_name, after_step=after_step)
    best = load_checkpoint(os.path.join(args.checkpoint_dir, checkpoint_name), map_location=device)
    load_weights(model, args.peft, best["model"])
    quantize_for_eval(model, args, name)
    return predict_and_write([model], splits, collate_fn, name, args, device, score, write,
                             outputs)


# Flags of a task run that say where its data and outputs go, not what its model is: an
# ensemble takes these from its own command line and every other flag from each checkpoint.
RUN_FLAGS = ("task", "data_dir", "tokenizer", "out_dir", "checkpoint_dir", "dev_out",
             "test_out", "use_gpu", "eval_batch_size", "max_length", "max_train_examples",
             "ensemble")


def ensemble_members(paths: list[str], args: argparse.Namespace,
                     build: Callable[[argparse.Namespace], nn.Module],
                     device: torch.device) -> Iterator[nn.Module]:
    """Each fine-tuned checkpoint at ``paths`` (a task script's best checkpoint: weights and
    its run's flags, "config") as a model on ``device``, one at a time.  ``build(flags)``
    makes it with the flags it was trained with (``args``'s for ``RUN_FLAGS``), after
    seeding with its run's seed as training did, so that a random or frozen backbone comes
    back the same; then its weights are loaded.  Exits naming the file when it is missing,
    unreadable or not a task checkpoint, or its weights do not fit.  With ``--quantize`` each
    member is quantized once loaded (``quantize_for_eval``)."""
    for path in paths:
        try:
            checkpoint = load_checkpoint(path, map_location=device, keys=("model", "config"))
        except ValueError as error:
            raise SystemExit(f"--ensemble {path}: {error}") from None
        saved = {key: value for key, value in checkpoint["config"].items()
                 if key not in RUN_FLAGS and hasattr(args, key)}
        flags = argparse.Namespace(**{**vars(args), **saved})
        seed_everything(flags.seed)
        model = build(flags).to(device)
        try:
            load_weights(model, flags.peft, checkpoint["model"])
        except (RuntimeError, KeyError, ValueError) as error:
            raise SystemExit(f"--ensemble {path}: its weights do not fit this task's model "
                             f"({error}); pass checkpoints that this task's script wrote") \
                from None
        print(f"[ensemble] {path}: peft {flags.peft}, seed {flags.seed}")
        yield quantize_for_eval(model, args, "ensemble")  # --quantize: the member quantized


def ensemble_probabilities(logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """The class probabilities of an ensemble (handout 7.9): the mean over its M members of
    each member's softmax.

    ``logits`` holds M >= 1 tensors [N, C], member m's class logits for the same N examples.
    Returns [N, C] in the logits' dtype (float64 logits give float64 probabilities), each
    row summing to 1:

        probabilities[n] = (1 / M) * sum_m softmax(logits[m][n])

    Each member's logits go through a softmax over the classes (the last dimension) first,
    then the probabilities are averaged; the softmax of the members' mean logits is another
    rule, one where a member with large logits outvotes the others.  Every member weighs
    1/M.  One member (M = 1) is an ensemble too: its own softmax.  The ensemble predicts the
    argmax over C.  For two members with logits [[0, 0]] and [[ln 3, 0]] the softmaxes are
    [0.5, 0.5] and [0.75, 0.25], and the ensemble's probabilities [[0.625, 0.375]].
    """
    ### BEGIN SOLUTION
    stacked = torch.stack(list(logits))  # (M, N, C)
    return torch.softmax(stacked, dim=-1).mean(dim=0)  # (N, C)
    ### END SOLUTION


def predict_and_write(models: Iterable[nn.Module], splits: dict[str, list],
                      collate_fn: Callable, name: str, args: argparse.Namespace,
                      device: torch.device,
                      score: Callable[[list[int], list[int]], tuple[float, float]],
                      write: Callable[[str, list[str], list[int]], None],
                      outputs: dict[str, str] | None = None, ensemble: bool = False) -> dict:
    """Predict each split (``splits``: "dev", labelled, and "test") and
    ``write(outputs[split], ids, predictions)`` (default path:
    ``<args.out_dir>/<name>-<split>-output.csv``).  With ``ensemble`` (the scripts'
    ``--ensemble`` mode, one checkpoint or more) ``models`` are its members and the
    predictions are the argmax of ``ensemble_probabilities`` of their logits; without it,
    ``models`` is one trained model and they are its logits' argmax.  The models are used
    one at a time, in order (a generator may build each when it is reached).  Returns
    {'dev_acc', 'dev_f1'}; with several models it also prints each one's dev accuracy and
    returns them as 'member_dev_acc'."""
    loaders = {split: make_loader(examples, collate_fn, args.eval_batch_size)
               for split, examples in splits.items()}
    logits: dict[str, list[torch.Tensor]] = {}  # split -> each model's logits [N, C]
    labels: dict[str, tuple[list[str], list[int]]] = {}  # split -> (ids, gold)
    member_acc = []
    for model in models:
        for split, loader in loaders.items():
            ids, member, gold = predict_logits(model, loader, device, f"{name} {split}")
            logits.setdefault(split, []).append(member)
            labels[split] = (ids, gold)
            if split == "dev":
                member_acc.append(score(gold, member.argmax(dim=-1).tolist())[0])
    if len(member_acc) > 1:
        print(f"[{name}] each member's dev acc: "
              + ", ".join(f"{accuracy:.4f}" for accuracy in member_acc))
    results = {}
    for split, (ids, gold) in labels.items():
        scores = ensemble_probabilities(logits[split]) if ensemble else logits[split][0]
        predictions = scores.argmax(dim=-1).tolist()  # (N,) the most probable class
        path = (outputs or {}).get(split) or os.path.join(args.out_dir,
                                                           f"{name}-{split}-output.csv")
        write(path, ids, predictions)
        print(f"[{name}] {split} predictions -> {path}")
        if split == "dev":
            results["dev_acc"], results["dev_f1"] = score(gold, predictions)
    label = f"ensemble of {len(member_acc)}:" if ensemble else "best"
    print(f"[{name}] {label} dev acc {results['dev_acc']:.4f}, macro-F1 {results['dev_f1']:.4f}")
    if len(member_acc) > 1:
        results["member_dev_acc"] = member_acc
    return results

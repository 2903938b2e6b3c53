"""Sentiment classification with GPT-2 (handout 6.1): SST (5 classes), CFIMDB (2 classes).

    python classifier.py --task both --fine-tune-mode full-model --use_gpu
    python classifier.py --task sst --random_init --max_train_examples 64 --epochs 1  # smoke

The classifier reads GPT-2's state at each sentence's last token, applies dropout and one
linear layer.  `last-linear-layer` trains only that layer (GPT-2 frozen); `full-model`
fine-tunes everything.  Each epoch prints train loss, dev accuracy and dev macro-F1 and
keeps the checkpoint with the best dev accuracy; the best one then writes the dev and test
predictions to `--dev_out` and `--test_out`.  Their defaults are the graded files,
`predictions/{task}-dev-output.csv` and `predictions/{task}-test-output.csv`, for
`full-model`, and `predictions/last-linear-layer-{task}-dev-output.csv` (and `-test-`) for
`last-linear-layer`, so that neither mode's run overwrites the other's (`{task}` is sst or
cfimdb; the folder is `--out_dir`); the best checkpoint, `{task}-classifier.pt` in
`--checkpoint_dir`, is named the same way.  `--smart_weight` and `--bregman_weight` add SMART's
terms to the loss (`training/smart.py`, handout 7.7).  With `--ensemble CKPT ...` (what
`ensemble.py` runs) it trains nothing: the checkpoints' mean class probabilities
(`ensemble_probabilities` in `training/finetune.py`, handout 7.9) give the predictions, under
the graded names.
"""

from __future__ import annotations

import argparse
import os
from functools import partial

import torch
from torch import nn

import evaluation
from data.loaders import (
    SENTIMENT_TASKS,
    SentimentExample,
    read_sentiment,
    require_examples,
    require_file,
)
from models.gpt2 import GPT2Model
from training.args import (
    POSITIVE_FLOAT,
    POSITIVE_INT,
    PROBABILITY_BELOW_ONE,
    add_ensemble_args,
    add_model_args,
    add_peft_args,
    add_quantize_args,
    device_from_args,
)
from training.finetune import (
    ensemble_members,
    fit_and_write,
    make_loader,
    predict_and_write,
    seed_everything,
)
from training.helpformat import HelpFormatter
from training.loading import load_gpt2, load_tokenizer, task_tokenizer
from training.peft import PEFT_LR, apply_peft
from training.smart import add_smart_args

DEFAULT_LR = {"last-linear-layer": 1e-3, "full-model": 2e-5}
GRADED_MODE = "full-model"  # its predictions keep the graded names (autograder/predictions.py)


class GPT2SentimentClassifier(nn.Module):
    """GPT-2 + dropout + linear head on the last real token's hidden state."""

    def __init__(self, gpt: GPT2Model, num_labels: int, hidden_dropout_prob: float = 0.3,
                 fine_tune_mode: str = "last-linear-layer"):
        super().__init__()
        if fine_tune_mode not in DEFAULT_LR:
            raise ValueError(f"fine_tune_mode {fine_tune_mode!r}; choose one of {list(DEFAULT_LR)}")
        self.gpt = gpt
        for param in self.gpt.parameters():  # frozen unless the whole model is fine-tuned
            param.requires_grad = fine_tune_mode == "full-model"
        self.dropout = nn.Dropout(hidden_dropout_prob)
        self.classifier = nn.Linear(gpt.config.hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Class logits (handout 6.1).  input_ids, attention_mask [B, T] (right-padded) ->
        [B, num_labels].

        Take GPT-2's 'last_token' output (the final-layer state at each row's last real
        token, [B, D]), apply `self.dropout`, then `self.classifier`.
        """
        ### BEGIN SOLUTION
        last_token = self.gpt(input_ids, attention_mask)["last_token"]  # (B, D)
        return self.classifier(self.dropout(last_token))  # (B, num_labels)
        ### END SOLUTION


def collate(examples: list[SentimentExample], tokenizer, max_length: int) -> dict:
    """Tokenize a batch, right-padded and truncated to max_length tokens.

    Returns input_ids, attention_mask [B, T] long; labels [B] long (-1 where unlabelled);
    ids, the example ids.
    """
    encoded = tokenizer([e.sentence for e in examples], padding=True, truncation=True,
                        max_length=max_length, return_tensors="pt")
    labels = torch.tensor([-1 if e.label is None else e.label for e in examples])
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
            "labels": labels, "ids": [e.id for e in examples]}


def read_task(args: argparse.Namespace, task: str) -> tuple[list, list, list, int]:
    """(train, dev, test examples, number of classes) of ``task`` in ``args.data_dir``."""
    stem, num_labels = SENTIMENT_TASKS[task]
    paths = {split: require_file(os.path.join(args.data_dir, f"{stem}-{split}.csv"))
             for split in ("train", "dev", "test-student")}
    train, dev, test = (require_examples(paths[split], read_sentiment(
        paths[split], num_labels, labelled=split != "test-student"))
        for split in ("train", "dev", "test-student"))
    return train, dev, test, num_labels


def build_model(args: argparse.Namespace, task: str, num_labels: int) -> nn.Module:
    """GPT-2 (``args``' weights) under the classifier head, adapters applied for --peft."""
    model = GPT2SentimentClassifier(load_gpt2(args), num_labels, args.hidden_dropout_prob,
                                    args.fine_tune_mode)
    apply_peft(model, args, task)
    return model


def run_task(args: argparse.Namespace, task: str, tokenizer, device: torch.device) -> dict:
    """Train on one task, keep the best dev checkpoint, write its dev/test predictions; with
    ``--ensemble``, train nothing and write the predictions of the checkpoints' mean."""
    train, dev, test, num_labels = read_task(args, task)
    if args.max_train_examples:
        train = train[:args.max_train_examples]
    outputs = {split: output_path(args, task, split) for split in ("dev", "test")}
    if args.ensemble:
        members = ensemble_members(args.ensemble, args,
                                   lambda flags: build_model(flags, task, num_labels), device)
        batch_of = partial(collate, tokenizer=tokenizer, max_length=args.max_length)
        print(f"[{task}] {len(dev)} dev / {len(test)} test, an ensemble of "
              f"{len(args.ensemble)} checkpoints, device {device}")
        return predict_and_write(members, {"dev": dev, "test": test}, batch_of, task, args,
                                 device, evaluation.accuracy_f1, evaluation.write_predictions,
                                 outputs, ensemble=True)
    seed_everything(args.seed)
    model = build_model(args, task, num_labels).to(device)
    max_length = min(args.max_length, model.gpt.config.max_position_embeddings)
    lr = args.lr or PEFT_LR.get(args.peft, DEFAULT_LR[args.fine_tune_mode])
    batch_of = partial(collate, tokenizer=tokenizer, max_length=max_length)
    train_loader = make_loader(train, batch_of, args.batch_size, shuffle=True, seed=args.seed)
    print(f"[{task}] {len(train)} train / {len(dev)} dev / {len(test)} test, "
          f"{num_labels} classes, {args.fine_tune_mode}, peft {args.peft}, lr {lr}, device {device}")
    return fit_and_write(model, train_loader, {"dev": dev, "test": test}, batch_of, task,
                         f"{mode_prefix(args)}{task}-classifier.pt", args, device, lr,
                         evaluation.accuracy_f1, evaluation.write_predictions, outputs)


def mode_prefix(args: argparse.Namespace) -> str:
    """What a run's file names start with, so that the two modes' runs keep apart: nothing
    for full-model (the graded names) and for an ensemble, ``{mode}-`` for another mode."""
    return "" if args.fine_tune_mode == GRADED_MODE or args.ensemble else f"{args.fine_tune_mode}-"


def output_path(args: argparse.Namespace, task: str, split: str) -> str:
    """Where ``task``'s ``split`` predictions go: ``--dev_out``/``--test_out`` with ``{task}``
    filled in, else ``<out_dir>/{mode_prefix}{task}-{split}-output.csv``."""
    given = getattr(args, f"{split}_out")
    if given is not None:
        return given.replace("{task}", task)
    return os.path.join(args.out_dir, f"{mode_prefix(args)}{task}-{split}-output.csv")


def get_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--task", default="both", choices=["sst", "cfimdb", "both"])
    parser.add_argument("--fine-tune-mode", dest="fine_tune_mode", default="last-linear-layer",
                        choices=list(DEFAULT_LR),
                        help="train only the head, or fine-tune all of GPT-2 too")
    parser.add_argument("--eval_batch_size", type=POSITIVE_INT, default=32)
    parser.add_argument("--lr", type=POSITIVE_FLOAT, default=None,
                        help="default: 1e-3 for last-linear-layer, 2e-5 for full-model, "
                             "5e-4 with --peft lora")
    parser.add_argument("--hidden_dropout_prob", type=PROBABILITY_BELOW_ONE,
                        default=0.3)
    parser.add_argument("--max_length", type=POSITIVE_INT, default=512,
                        help="tokens per example")
    for split in ("dev", "test"):
        parser.add_argument(f"--{split}_out", default=None,
                            help=f"the {split} predictions' file; {{task}} becomes sst or "
                                 f"cfimdb (default: <out_dir>/{{task}}-{split}-output.csv, "
                                 f"the graded name, for full-model; <out_dir>/"
                                 f"last-linear-layer-{{task}}-{split}-output.csv otherwise)")
    add_model_args(parser)
    add_peft_args(parser)
    add_quantize_args(parser)
    add_smart_args(parser)
    add_ensemble_args(parser)
    args = parser.parse_args(argv)
    if args.ensemble and args.task == "both":
        parser.error("--ensemble with --task both: checkpoints belong to one task; pass "
                     "--task sst or --task cfimdb")
    for split in ("dev", "test"):
        given = getattr(args, f"{split}_out")
        if given is not None and args.task == "both" and "{task}" not in given:
            parser.error(f"--{split}_out {given}: with --task both it must hold {{task}} "
                         f"(e.g. predictions/{{task}}-{split}-output.csv), or the two tasks "
                         "would write one file")
    if args.dev_out is not None and args.dev_out == args.test_out:
        parser.error(f"--dev_out and --test_out are both {args.dev_out}; give two files")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = get_args(argv)
    device = device_from_args(args)
    args.tokenizer = task_tokenizer(args)  # what the run's checkpoints record
    tokenizer = load_tokenizer(args.tokenizer)
    tasks = list(SENTIMENT_TASKS) if args.task == "both" else [args.task]
    return {task: run_task(args, task, tokenizer, device) for task in tasks}


if __name__ == "__main__":
    main()

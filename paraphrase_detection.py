"""Quora paraphrase detection as a cloze task for GPT-2 (handout 6.2).

    python paraphrase_detection.py --use_gpu
    python paraphrase_detection.py --random_init --max_train_examples 64 --epochs 1  # smoke

Every pair, in train, dev and test alike, becomes one prompt
(`data.loaders.PARAPHRASE_PROMPT`) that ends where the answer goes; the model's next-token
logits, restricted to the two answer tokens " no" and " yes" (ids looked up in the
tokenizer), are the class logits [no, yes], so label 1 (paraphrase) is " yes".

Training uses cross-entropy over those two logits only.  This is the binary
classification loss of a head whose weights are the tied embeddings of " no" and " yes":
it moves the answer tokens apart and nothing else.  Cross-entropy over the whole
vocabulary would also spend effort pushing down 50k irrelevant tokens, and its argmax
could leave the two answers; restricted to two, prediction and loss always agree.

`--smart_weight` and `--bregman_weight` add SMART's terms to the loss (`training/smart.py`,
handout 7.7).  With `--ensemble CKPT ...` (what `ensemble.py` runs) it trains nothing: the
checkpoints' mean class probabilities (`ensemble_probabilities` in `training/finetune.py`,
handout 7.9) give the predictions.
"""

from __future__ import annotations

import argparse
import os
from functools import partial

import torch
from torch import nn

import evaluation
from data.loaders import (
    PARAPHRASE_ANSWERS,
    PARAPHRASE_PROMPT,
    ParaphraseExample,
    read_paraphrase,
    require_examples,
    require_file,
)
from models.gpt2 import GPT2Model
from training.args import (
    POSITIVE_FLOAT,
    POSITIVE_INT,
    add_ensemble_args,
    add_model_args,
    add_peft_args,
    add_quantize_args,
    device_from_args,
    flag_error,
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


def answer_token_ids(tokenizer) -> list[int]:
    """Ids of " no" and " yes" in this tokenizer; each must be a single token."""
    ids = []
    for answer in PARAPHRASE_ANSWERS:
        tokens = tokenizer.encode(answer)
        if len(tokens) != 1:
            raise ValueError(f"answer {answer!r} is {len(tokens)} tokens in this tokenizer, "
                             "the cloze needs exactly one")
        ids.append(tokens[0])
    return ids


class ParaphraseGPT(nn.Module):
    """GPT-2 language model whose next-token logits for [" no", " yes"] are the classes."""

    def __init__(self, gpt: GPT2Model, answer_ids: list[int]):
        super().__init__()
        self.gpt = gpt
        self.register_buffer("answer_ids", torch.tensor(answer_ids), persistent=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Cloze logits (handout 6.2).  input_ids, attention_mask [B, T] (right-padded) -> [B, 2].

        Take GPT-2's 'last_token' state [B, D], turn it into next-token logits [B, V] with
        `self.gpt.hidden_state_to_token`, and keep the columns `self.answer_ids`
        ([" no", " yes"]) so that column 1 means "paraphrase".
        """
        ### BEGIN SOLUTION
        last_token = self.gpt(input_ids, attention_mask)["last_token"]  # (B, D)
        logits = self.gpt.hidden_state_to_token(last_token)  # (B, V)
        return logits[:, self.answer_ids]  # (B, 2)
        ### END SOLUTION


def collate(examples: list[ParaphraseExample], tokenizer, max_length: int) -> dict:
    """Prompts -> input_ids, attention_mask [B, T] (right-padded); labels [B] (-1 if none).

    Over-long prompts lose tokens from the left (the tokenizer's truncation_side is set to
    "left" in `main`), so the question at the end always survives.
    """
    prompts = [PARAPHRASE_PROMPT.format(e.sentence1, e.sentence2) for e in examples]
    encoded = tokenizer(prompts, padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")
    labels = torch.tensor([-1 if e.label is None else e.label for e in examples])
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
            "labels": labels, "ids": [e.id for e in examples]}


def get_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--eval_batch_size", type=POSITIVE_INT, default=32)
    parser.add_argument("--lr", type=POSITIVE_FLOAT, default=None,
                        help="default: 1e-5, or 5e-4 with --peft lora")
    parser.add_argument("--max_length", type=POSITIVE_INT, default=128,
                        help="tokens per prompt")
    add_model_args(parser)
    add_peft_args(parser)
    add_quantize_args(parser)
    add_smart_args(parser)
    add_ensemble_args(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = get_args(argv)
    device = device_from_args(args)
    paths = {split: require_file(os.path.join(args.data_dir, f"quora-{split}.csv"))
             for split in ("train", "dev", "test-student")}
    train, dev, test = (require_examples(paths[split], read_paraphrase(
        paths[split], labelled=split != "test-student"))
        for split in ("train", "dev", "test-student"))
    if args.max_train_examples:
        train = train[:args.max_train_examples]

    args.tokenizer = task_tokenizer(args)  # what the run's checkpoints record
    tokenizer = load_tokenizer(args.tokenizer)
    tokenizer.truncation_side = "left"
    try:
        answer_ids = answer_token_ids(tokenizer)
    except ValueError as error:
        flag_error(f"--tokenizer {args.tokenizer}: {error} (a character model's bytes "
                   "cannot answer it: use a checkpoint with GPT-2's vocabulary)")

    def build_model(flags: argparse.Namespace) -> nn.Module:
        model = ParaphraseGPT(load_gpt2(flags), answer_ids)
        apply_peft(model, flags, "para")
        return model

    answers = dict(zip(PARAPHRASE_ANSWERS, answer_ids, strict=True))
    if args.ensemble:
        batch_of = partial(collate, tokenizer=tokenizer, max_length=args.max_length)
        print(f"[para] {len(dev)} dev / {len(test)} test pairs; answers {answers}; an "
              f"ensemble of {len(args.ensemble)} checkpoints, device {device}")
        return predict_and_write(ensemble_members(args.ensemble, args, build_model, device),
                                 {"dev": dev, "test": test}, batch_of, "para", args, device,
                                 evaluation.accuracy_f1, evaluation.write_predictions,
                                 ensemble=True)
    seed_everything(args.seed)
    model = build_model(args).to(device)
    max_length = min(args.max_length, model.gpt.config.max_position_embeddings)
    lr = args.lr or PEFT_LR.get(args.peft, 1e-5)
    batch_of = partial(collate, tokenizer=tokenizer, max_length=max_length)
    train_loader = make_loader(train, batch_of, args.batch_size, shuffle=True, seed=args.seed)
    print(f"[para] {len(train)} train / {len(dev)} dev / {len(test)} test pairs; answers "
          f"{answers}; lr {lr}, device {device}")
    return fit_and_write(model, train_loader, {"dev": dev, "test": test}, batch_of, "para",
                         "paraphrase.pt", args, device, lr,
                         evaluation.accuracy_f1, evaluation.write_predictions)


if __name__ == "__main__":
    main()

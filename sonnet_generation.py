"""Sonnet generation with GPT-2 (handout 6.3): fine-tune on Shakespeare, then continue
the held-out sonnets from their first three lines.

    python sonnet_generation.py --use_gpu
    python sonnet_generation.py --random_init --max_train_examples 8 --epochs 1  # smoke

Training text is each sonnet's lines joined by newlines, then <|endoftext|>; the loss is
next-token cross-entropy over real tokens only (padding is ignored).  Generation is
batched (left-padded prompts), seeded, uses a KV cache so that each new token costs one
step, samples with temperature and top-p, and stops at <|endoftext|> or after
--max_new_tokens.  The fine-tuned model is saved to `<checkpoint_dir>/sonnet.pt` (with
`--peft lora`: the adapters only; they are merged into the weights before generating),
the starting point of `dpo.py --task sonnet`.  It writes `predictions/generated_sonnets_dev.txt` (for
sonnets_held_out_dev.txt, scored with chrF against TRUE_sonnets_held_out_dev.txt) and
`predictions/generated_sonnets.txt` (for sonnets_held_out.txt).  Beside the dev chrF it
reports the dev cross-entropy (nats per predicted token, over the true dev sonnets encoded
as in training) and its perplexity, exp(cross-entropy).
"""

from __future__ import annotations

import argparse
import math
import os

import torch
import torch.nn.functional as F

import evaluation
from data.loaders import require_examples, require_file
from models.generate import (
    generate_sonnets,
    sample_next,  # noqa: F401  (re-exported: the sampling step)
)
from models.gpt2 import GPT2Model
from modules.lora import merge_lora
from training.args import (
    POSITIVE_FLOAT,
    POSITIVE_INT,
    add_model_args,
    add_peft_args,
    add_quantize_args,
    bounded,
    device_from_args,
)
from training.finetune import fit, make_loader, quantize_for_eval, seed_everything
from training.helpformat import HelpFormatter
from training.loading import load_gpt2, load_tokenizer, task_tokenizer
from training.peft import PEFT_LR, apply_peft
from training.trainer import autocast


def lm_loss(gpt: GPT2Model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over real tokens.  input_ids, attention_mask [B, T].

    Position t predicts token t + 1; targets that are padding (mask 0) are ignored.
    """
    hidden = gpt(input_ids, attention_mask)["last_hidden_state"]  # (B, T, D)
    logits = gpt.hidden_state_to_token(hidden[:, :-1]).float()  # (B, T-1, V)
    targets = input_ids[:, 1:].masked_fill(attention_mask[:, 1:] == 0, -100)  # (B, T-1)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           ignore_index=-100)


@torch.no_grad()
def dev_cross_entropy(gpt: GPT2Model, loader, device: torch.device) -> float:
    """Mean next-token cross-entropy (nats) over every real target token of ``loader``'s
    batches (input_ids, attention_mask [B, T]): each batch's ``lm_loss`` weighted by its
    number of targets, so the mean is per token, not per batch."""
    was_training = gpt.training
    gpt.eval()
    total = count = 0.0
    for batch in loader:
        input_ids, attention_mask = (batch[k].to(device) for k in ("input_ids", "attention_mask"))
        targets = float(attention_mask[:, 1:].sum())
        with autocast(device):
            total += float(lm_loss(gpt, input_ids, attention_mask)) * targets
        count += targets
    gpt.train(was_training)
    return total / count


def get_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--lr", type=POSITIVE_FLOAT, default=None,
                        help="default: 1e-5, or 5e-4 with --peft lora")
    parser.add_argument("--temperature", type=bounded(float, 0.0), default=1.2,
                        help="0 = greedy")
    parser.add_argument("--top_p", type=bounded(float, 0.0, 1.0, low_open=True),
                        default=0.9)
    parser.add_argument("--max_new_tokens", type=POSITIVE_INT, default=160)
    parser.add_argument("--gen_batch_size", type=POSITIVE_INT, default=12)
    add_model_args(parser)
    add_peft_args(parser)
    add_quantize_args(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = get_args(argv)
    device = device_from_args(args)
    files = {name: require_file(os.path.join(args.data_dir, name)) for name in
             ("sonnets.txt", "sonnets_held_out_dev.txt", "TRUE_sonnets_held_out_dev.txt",
              "sonnets_held_out.txt")}
    sonnets = {name: require_examples(path, evaluation.read_sonnets(path))
               for name, path in files.items()}
    train = [text for _, text in sonnets["sonnets.txt"]]
    if args.max_train_examples:
        train = train[:args.max_train_examples]
    args.tokenizer = task_tokenizer(args)  # what the run's checkpoints record
    tokenizer = load_tokenizer(args.tokenizer)
    seed_everything(args.seed)
    gpt = load_gpt2(args)
    apply_peft(gpt, args, "sonnet")
    gpt = gpt.to(device)
    max_length = gpt.config.max_position_embeddings

    def batch_of(texts: list[str]) -> dict:
        encoded = tokenizer([t + tokenizer.eos_token for t in texts], padding=True,
                            truncation=True, max_length=max_length, return_tensors="pt")
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    loader = make_loader(train, batch_of, args.batch_size, shuffle=True, seed=args.seed)
    lr = args.lr or PEFT_LR.get(args.peft, 1e-5)
    print(f"[sonnet] {len(train)} training sonnets, lr {lr}, device {device}")
    fit(gpt, loader, lambda model, batch: lm_loss(model, batch["input_ids"],
                                                  batch["attention_mask"]),
        "sonnet", args, device, lr, last_name="sonnet.pt")
    print(f"[sonnet] checkpoint -> {os.path.join(args.checkpoint_dir, 'sonnet.pt')}")
    merge_lora(gpt)  # generation without the adapter branch (nothing to do without peft)
    quantize_for_eval(gpt, args, "sonnet")  # --quantize: generate and score quantized

    results = {}
    for prompts_name, out_name in (("sonnets_held_out_dev.txt", "generated_sonnets_dev.txt"),
                                   ("sonnets_held_out.txt", "generated_sonnets.txt")):
        with autocast(device):
            written = generate_sonnets(gpt, tokenizer, sonnets[prompts_name], args)
        path = os.path.join(args.out_dir, out_name)
        evaluation.write_sonnets(path, written)
        print(f"[sonnet] {len(written)} sonnets -> {path}")
    true = sonnets["TRUE_sonnets_held_out_dev.txt"]
    generated = evaluation.read_sonnets(os.path.join(args.out_dir, "generated_sonnets_dev.txt"))
    results["dev_chrf"], errors = evaluation.sonnet_chrf(generated, true)
    for error in errors:
        print(f"[sonnet] warning: {error}")
    dev_loader = make_loader([text for _, text in true], batch_of, args.batch_size)
    results["dev_cross_entropy"] = dev_cross_entropy(gpt, dev_loader, device)
    results["dev_perplexity"] = math.exp(results["dev_cross_entropy"])
    print(f"[sonnet] dev chrF {results['dev_chrf']:.2f}, dev cross-entropy "
          f"{results['dev_cross_entropy']:.4f}, perplexity {results['dev_perplexity']:.2f}")
    return results


if __name__ == "__main__":
    main()

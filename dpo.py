"""Direct preference optimisation (handout 7.3): teach a fine-tuned GPT-2 to prefer the
chosen completion of each pair over the rejected one, against a frozen reference.

    python dpo.py --task sonnet --model_path out/sonnet-hf --use_gpu
    python dpo.py --task sonnet --peft lora --precompute_reference --use_gpu
    python dpo.py --task quora --init_checkpoint out/paraphrase.pt --epochs 2
    python sample.py --checkpoint out/dpo-sonnet.pt --start "Shall I compare thee"

The pairs come from `data/pairs.py` (their rules are documented there) and are written to
`<out_dir>/dpo-<task>-{train,dev}-pairs.jsonl`.  The policy starts from the fine-tuned
weights (`--model_path` Hugging Face folder, `pretrain.py` checkpoint or `--model_size`,
then `--init_checkpoint`, a task script's checkpoint); the reference is that same starting
point, frozen: with `--peft lora` it is the policy with its adapters off (no second copy),
with `--precompute_reference` its log-probabilities are computed once before training, and
otherwise it is a frozen copy.

Training runs on the one loop (`training.finetune.fit`, `training.trainer.Trainer`): each
step logs the loss, the chosen and rejected rewards, their margin and the reward accuracy
to `<checkpoint_dir>/dpo-<task>-metrics.jsonl` (`train_loss`, `train_chosen_reward`, ...),
and each epoch evaluates the dev preference accuracy and, for sonnets, the dev chrF and the
sonnet-form score (also once before training), each epoch's logged in the same file.  The
trained model is saved to `<checkpoint_dir>/dpo-<task>.pt` (a whole GPT-2: LoRA adapters
are merged into it), which `sample.py`, `evaluate_lm.py` and `export_hf.py` load (the loop
also keeps `dpo-<task>-best.pt`, the epoch of the best dev preference accuracy, as a task
script's checkpoint: with LoRA, the adapters only), and its graded prediction files go
to `<out_dir>` under the names the autograder reads: `generated_sonnets_dev.txt` and
`generated_sonnets.txt`, or `para-dev-output.csv` and `para-test-output.csv` (so pass
another `--out_dir` to keep the fine-tuned model's).  `--quantize int8|bf16` writes them
with the policy quantized (the checkpoint stays float).
"""

from __future__ import annotations

import argparse
import copy
import os
from collections.abc import Callable
from contextlib import nullcontext
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F

from data.loaders import (
    PARAPHRASE_ANSWERS,
    PARAPHRASE_PROMPT,
    read_paraphrase,
    require_examples,
    require_file,
)
from data.pairs import Pair, quora_pairs, sonnet_form_score, sonnet_pairs, split_sonnet, write_pairs
from evaluation import read_sonnets, sonnet_chrf, write_predictions, write_sonnets
from models.generate import generate_sonnets
from models.gpt2 import GPT2Model
from modules.lora import disable_adapters, merge_lora
from training.args import (
    POSITIVE_FLOAT,
    POSITIVE_INT,
    add_model_args,
    add_peft_args,
    add_quantize_args,
    bounded,
    device_from_args,
)
from training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from training.finetune import fit, make_loader, quantize_for_eval, seed_everything
from training.helpformat import HelpFormatter
from training.loading import load_gpt2, load_tokenizer, task_tokenizer
from training.peft import apply_peft, load_backbone_checkpoint
from training.trainer import autocast


def sequence_logprobs(model: GPT2Model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      completion_mask: torch.Tensor, average: bool = False) -> torch.Tensor:
    """Log-probability of each row's completion under `model` (handout 7.3).

    Args:
        input_ids: [B, T] prompt then completion (ending with <|endoftext|>), right-padded.
        attention_mask: [B, T] 0/1, 1 on real tokens.
        completion_mask: [B, T] 0/1, 1 on the completion's tokens (the end-of-text
            token included), 0 on the prompt and on padding.
        average: divide each row's sum by its number of completion tokens.
    Returns:
        [B] float: sum over positions t >= 1 with completion_mask[t] = 1 of
        log softmax(logits[t - 1])[input_ids[t]], where logits = hidden_state_to_token of
        the model's 'last_hidden_state' (each token predicted from the position before it;
        a completion token at position 0 has no predictor and is not counted).  Compute
        the log-softmax in at least float32 (logits may be bf16 under autocast).
    Example: prompt [a], completion [b, EOT], T = 3: log p(b | a) + log p(EOT | a b).
    """
    ### BEGIN SOLUTION
    hidden = model(input_ids, attention_mask)["last_hidden_state"]  # (B, T, D)
    logits = model.hidden_state_to_token(hidden[:, :-1])  # (B, T-1, V)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    token_logps = torch.log_softmax(logits, dim=-1).gather(
        -1, input_ids[:, 1:, None]).squeeze(-1)  # (B, T-1)
    mask = (completion_mask[:, 1:] * attention_mask[:, 1:]).to(token_logps.dtype)  # (B, T-1)
    total = (token_logps * mask).sum(dim=-1)  # (B,)
    return total / mask.sum(dim=-1) if average else total
    ### END SOLUTION


def sigmoid_loss(logits: torch.Tensor, beta: float, label_smoothing: float) -> torch.Tensor:
    """DPO (Rafailov et al. 2023, eq. 7); with label smoothing ε, conservative DPO
    (handout 7.3).

    logits [B] = (policy - reference) log-ratio of chosen over rejected.  Returns [B]:
    -(1 - ε) log σ(β logits) - ε log σ(-β logits).
    Example: logits 1.5, β 0.1, ε 0: -log σ(0.15) = 0.62096.
    """
    ### BEGIN SOLUTION
    return (-F.logsigmoid(beta * logits) * (1 - label_smoothing)
            - F.logsigmoid(-beta * logits) * label_smoothing)
    ### END SOLUTION


def ipo_loss(logits: torch.Tensor, beta: float, label_smoothing: float) -> torch.Tensor:
    """IPO, Azar et al. 2023, eq. 17 (handout 7.3): (logits - 1 / (2β))^2, [B].
    Example: logits 1.5, β 0.1 -> (1.5 - 5)^2 = 12.25.  (label_smoothing must be 0.)"""
    ### BEGIN SOLUTION
    return (logits - 1 / (2 * beta)) ** 2
    ### END SOLUTION


def hinge_loss(logits: torch.Tensor, beta: float, label_smoothing: float) -> torch.Tensor:
    """SLiC's hinge loss, Zhao et al. 2023 (handout 7.3), on the DPO log-ratio:
    max(0, 1 - β logits), [B].  Example: logits 1.5, β 0.1 -> 0.85.  (label_smoothing
    must be 0.)"""
    ### BEGIN SOLUTION
    return torch.relu(1 - beta * logits)
    ### END SOLUTION


# loss_type -> the loss of one log-ratio margin; label smoothing is sigmoid's only.
DPO_LOSSES: dict[str, Callable[[torch.Tensor, float, float], torch.Tensor]] = {
    "sigmoid": sigmoid_loss,
    "ipo": ipo_loss,
    "hinge": hinge_loss,
}


def check_loss_arguments(beta: float, label_smoothing: float, loss_type: str) -> None:
    """Raise ValueError naming the value for a loss_type, beta or label_smoothing dpo_loss
    cannot take."""
    if loss_type not in DPO_LOSSES:
        raise ValueError(f"loss_type {loss_type!r}; choose one of {sorted(DPO_LOSSES)}")
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if not 0 <= label_smoothing < 0.5 or (label_smoothing and loss_type != "sigmoid"):
        raise ValueError(f"label_smoothing {label_smoothing}: must be in [0, 0.5), and 0 "
                         f"unless loss_type is 'sigmoid' (got {loss_type!r})")


def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             reference_chosen_logps: torch.Tensor, reference_rejected_logps: torch.Tensor,
             beta: float = 0.1, label_smoothing: float = 0.0, loss_type: str = "sigmoid",
             reference_free: bool = False
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The DPO family of losses on summed completion log-probabilities (handout 7.3).

    Args: four [B] tensors of log-probabilities (`sequence_logprobs`); beta > 0;
    label_smoothing ε in [0, 0.5) (sigmoid only); loss_type a key of `DPO_LOSSES`;
    reference_free: use a reference log-ratio of 0 (the reference is uniform).
    Returns (losses [B], chosen_rewards [B], rejected_rewards [B]):
        logits = (policy_chosen - policy_rejected) - (reference_chosen - reference_rejected)
                 (without the second bracket when reference_free);
        losses = DPO_LOSSES[loss_type](logits, beta, label_smoothing);
        chosen_rewards = beta * (policy_chosen - reference_chosen), detached,
        rejected_rewards = beta * (policy_rejected - reference_rejected), detached
        (the rewards always use the reference log-probabilities given).
    Example: policy (-1, -3), reference (-2, -2.5), beta 0.1: logits 1.5, sigmoid loss
    0.62096, rewards 0.1 and -0.05.  Start with `check_loss_arguments`.
    """
    ### BEGIN SOLUTION
    check_loss_arguments(beta, label_smoothing, loss_type)
    policy_logratios = policy_chosen_logps - policy_rejected_logps  # (B,)
    reference_logratios = reference_chosen_logps - reference_rejected_logps  # (B,)
    logits = policy_logratios - (0 if reference_free else reference_logratios)
    losses = DPO_LOSSES[loss_type](logits, beta, label_smoothing)
    chosen_rewards = beta * (policy_chosen_logps - reference_chosen_logps).detach()
    rejected_rewards = beta * (policy_rejected_logps - reference_rejected_logps).detach()
    return losses, chosen_rewards, rejected_rewards
    ### END SOLUTION


# --- pairs as batches --------------------------------------------------------------------

def encode_pairs(pairs: list, tokenizer, max_length: int) -> dict[str, torch.Tensor]:
    """Pairs -> one right-padded batch holding every chosen row, then every rejected row.

    Each row is tokenizer(prompt) + tokenizer(completion) + [<|endoftext|>]; rows longer
    than `max_length` lose tokens from the end of the completion (a prompt that leaves no
    room is a ValueError naming the pair).  Returns input_ids, attention_mask,
    completion_mask [2B, T] long (completion_mask: 1 on the completion and its
    end-of-text token).
    """
    rows = []
    for completion_of in ("chosen", "rejected"):
        for pair in pairs:
            prompt = tokenizer.encode(pair.prompt)
            completion = tokenizer.encode(getattr(pair, completion_of)) + [tokenizer.eos_token_id]
            if len(prompt) >= max_length:
                raise ValueError(f"pair {pair.id}: its prompt has {len(prompt)} tokens, no "
                                 f"room for a completion within max_length {max_length}")
            rows.append((prompt, completion[:max_length - len(prompt)]))
    T = max(len(p) + len(c) for p, c in rows)
    batch = {key: torch.zeros(len(rows), T, dtype=torch.long)
             for key in ("input_ids", "attention_mask", "completion_mask")}
    for row, (prompt, completion) in enumerate(rows):
        length = len(prompt) + len(completion)
        batch["input_ids"][row, :length] = torch.tensor(prompt + completion)
        batch["attention_mask"][row, :length] = 1
        batch["completion_mask"][row, len(prompt):length] = 1
    return batch


def pair_logprobs(model: GPT2Model, batch: dict[str, torch.Tensor]
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen, rejected) log-probabilities [B] each, from one forward pass over 2B rows."""
    device = model.device
    logps = sequence_logprobs(model, batch["input_ids"].to(device),
                              batch["attention_mask"].to(device),
                              batch["completion_mask"].to(device))  # (2B,)
    return logps.chunk(2)


@torch.no_grad()
def reference_logprobs(policy: GPT2Model, reference: GPT2Model | None,
                       batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's (chosen, rejected) log-probabilities: `reference`'s, or, when it is
    None, the policy's with its LoRA adapters off (the policy itself when it has none)."""
    context = disable_adapters(policy) if reference is None else nullcontext()
    model = policy if reference is None else reference
    was_training = model.training
    model.eval()
    with context:
        logps = pair_logprobs(model, batch)
    model.train(was_training)
    return logps


def dpo_losses(policy: GPT2Model, batch: dict[str, torch.Tensor],
               reference_logps: tuple[torch.Tensor, torch.Tensor], beta: float = 0.1,
               label_smoothing: float = 0.0, loss_type: str = "sigmoid",
               reference_free: bool = False) -> dict[str, torch.Tensor]:
    """One batch of pairs as the loop's loss: {'loss': the mean loss (to backpropagate),
    'chosen_reward', 'rejected_reward' (means), 'margin' (their difference),
    'reward_accuracy' (the share of pairs whose chosen reward is strictly above the rejected
    one)}, scalars, the metrics detached."""
    chosen, rejected = pair_logprobs(policy, batch)
    reference_chosen, reference_rejected = (t.to(chosen.device) for t in reference_logps)
    losses, chosen_rewards, rejected_rewards = dpo_loss(
        chosen, rejected, reference_chosen, reference_rejected, beta, label_smoothing,
        loss_type, reference_free)
    return {"loss": losses.mean(), "chosen_reward": chosen_rewards.mean(),
            "rejected_reward": rejected_rewards.mean(),
            "margin": (chosen_rewards - rejected_rewards).mean(),
            "reward_accuracy": (chosen_rewards > rejected_rewards).float().mean()}


def dpo_step(policy: GPT2Model, batch: dict[str, torch.Tensor],
             reference_logps: tuple[torch.Tensor, torch.Tensor], beta: float = 0.1,
             label_smoothing: float = 0.0, loss_type: str = "sigmoid",
             reference_free: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
    """`dpo_losses` as (the loss to backpropagate, every part as a float)."""
    parts = dpo_losses(policy, batch, reference_logps, beta, label_smoothing, loss_type,
                       reference_free)
    return parts["loss"], {name: float(value.detach()) for name, value in parts.items()}


@torch.no_grad()
def preference_accuracy(model: GPT2Model, batches: list[dict[str, torch.Tensor]]) -> float:
    """Share of pairs whose chosen completion the model finds more likely than the rejected
    one (for Quora pairs, the cloze's dev accuracy)."""
    was_training = model.training
    model.eval()
    wins = total = 0
    for batch in batches:
        chosen, rejected = pair_logprobs(model, batch)
        wins, total = wins + int((chosen > rejected).sum()), total + chosen.numel()
    model.train(was_training)
    return wins / max(total, 1)


# --- the script ----------------------------------------------------------------------------

def load_policy(args: argparse.Namespace, device: torch.device) -> GPT2Model:
    """The fine-tuned starting point: the flags' weights (dropout off, so that the policy
    equals its reference at step 0), then `--init_checkpoint`, then the `--peft` adapters."""
    policy = load_gpt2(args, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    if args.init_checkpoint:
        load_backbone_checkpoint(policy, args.init_checkpoint)
    apply_peft(policy, args, "dpo")
    return policy.to(device)


def sonnet_task(args: argparse.Namespace, policy: GPT2Model, tokenizer
                ) -> tuple[list[Pair], list[Pair]]:
    """Pairs of the training sonnets (with --model_samples, the policy's own continuations
    as candidates for rejected) and of the true held-out dev sonnets."""
    train_sonnets = read_sonnets(data_file(args, "sonnets.txt"))[:args.max_train_examples]
    samples = None
    if args.model_samples:
        prompts = [(n, split_sonnet(text)[0]) for n, text in train_sonnets]
        written = generate_sonnets(policy, tokenizer, prompts, args)  # prompt + continuation
        samples = {n: text[len(prompt.rstrip()):].strip("\n")
                   for (n, text), (_, prompt) in zip(written, prompts, strict=True)}
    dev = read_sonnets(data_file(args, "TRUE_sonnets_held_out_dev.txt"))
    return sonnet_pairs(train_sonnets, args.seed, samples), sonnet_pairs(dev, args.seed)


def quora_task(args: argparse.Namespace, policy: GPT2Model, tokenizer
               ) -> tuple[list[Pair], list[Pair]]:
    """Pairs of the Quora training and dev questions (right answer chosen)."""
    train = read_paraphrase(data_file(args, "quora-train.csv"))[:args.max_train_examples]
    dev = read_paraphrase(data_file(args, "quora-dev.csv"))[:args.max_dev_pairs]
    return quora_pairs(train), quora_pairs(dev)


def sonnet_scores(policy: GPT2Model, tokenizer, args: argparse.Namespace) -> dict[str, float]:
    """Dev chrF and mean sonnet-form score of sonnets generated from the dev prompts."""
    prompts = read_sonnets(data_file(args, "sonnets_held_out_dev.txt"))
    true = read_sonnets(data_file(args, "TRUE_sonnets_held_out_dev.txt"))
    with autocast(policy.device):
        written = generate_sonnets(policy, tokenizer, prompts, args)
    return {"dev_chrf": sonnet_chrf(written, true)[0],
            "dev_sonnet_form": sum(sonnet_form_score(t) for _, t in written) / len(written)}


def sonnet_predictions(policy: GPT2Model, tokenizer, args: argparse.Namespace) -> list[str]:
    """The graded sonnet files: continuations of the held-out dev and test prompts."""
    paths = []
    for prompts_name, out_name in (("sonnets_held_out_dev.txt", "generated_sonnets_dev.txt"),
                                   ("sonnets_held_out.txt", "generated_sonnets.txt")):
        prompts = read_sonnets(data_file(args, prompts_name))
        with autocast(policy.device):
            written = generate_sonnets(policy, tokenizer, prompts, args)
        paths.append(os.path.join(args.out_dir, out_name))
        write_sonnets(paths[-1], written)
    return paths


@torch.no_grad()
def quora_predictions(policy: GPT2Model, tokenizer, args: argparse.Namespace) -> list[str]:
    """The graded Quora files: label 1 (paraphrase) where the policy finds " yes" more
    likely than " no" after the cloze prompt, scored as the pairs are (`pair_logprobs`)."""
    paths = []
    encode = partial(encode_pairs, tokenizer=tokenizer, max_length=policy_length(args, policy))
    for split, name in (("dev", "quora-dev.csv"), ("test", "quora-test-student.csv")):
        path = data_file(args, name)
        examples = require_examples(path, read_paraphrase(path, labelled=split == "dev"))
        asked = [Pair(e.id, PARAPHRASE_PROMPT.format(e.sentence1, e.sentence2), PARAPHRASE_ANSWERS[1],
                      PARAPHRASE_ANSWERS[0], "prediction") for e in examples]
        labels = []
        policy.eval()
        for start in range(0, len(asked), args.batch_size):
            yes, no = pair_logprobs(policy, encode(asked[start:start + args.batch_size]))
            labels += (yes > no).long().tolist()
        paths.append(os.path.join(args.out_dir, f"para-{split}-output.csv"))
        write_predictions(paths[-1], [e.id for e in examples], labels)
    return paths


# --task -> (its train and dev pairs, the scores beyond dev preference accuracy, the
# graded prediction files it writes).
TASKS = {"sonnet": (sonnet_task, sonnet_scores, sonnet_predictions),
         "quora": (quora_task, lambda policy, tokenizer, args: {}, quora_predictions)}


def data_file(args: argparse.Namespace, name: str) -> str:
    return require_file(os.path.join(args.data_dir, name))


def evaluate(policy: GPT2Model, dev_batches: list[dict], tokenizer, args: argparse.Namespace
             ) -> dict[str, float]:
    """Dev preference accuracy (for Quora, the cloze's accuracy) and the task's scores.
    The loop calls it in eval mode, without gradients, after every epoch."""
    return {"dev_preference_accuracy": preference_accuracy(policy, dev_batches),
            **TASKS[args.task][1](policy, tokenizer, args)}


def get_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--task", default="sonnet", choices=sorted(TASKS))
    parser.add_argument("--init_checkpoint", default=None,
                        help="a task script's checkpoint (.pt) loaded over the weights")
    parser.add_argument("--lr", type=POSITIVE_FLOAT, default=None,
                        help="default: 1e-6, or 1e-4 with --peft lora")
    parser.add_argument("--beta", type=POSITIVE_FLOAT, default=0.1)
    parser.add_argument("--label_smoothing", type=bounded(float, 0.0, 0.5, high_open=True),
                        default=0.0, help="conservative DPO (sigmoid loss only)")
    parser.add_argument("--loss_type", default="sigmoid", choices=sorted(DPO_LOSSES))
    parser.add_argument("--reference_free", action="store_true")
    parser.add_argument("--precompute_reference", action="store_true",
                        help="reference log-probabilities once, before training")
    parser.add_argument("--model_samples", action="store_true",
                        help="sonnets: the model's own samples as rejected when ranked lower")
    parser.add_argument("--max_length", type=POSITIVE_INT, default=256)
    parser.add_argument("--max_dev_pairs", type=POSITIVE_INT, default=200)
    parser.add_argument("--temperature", type=bounded(float, 0.0), default=1.2)
    parser.add_argument("--top_p", type=bounded(float, 0.0, 1.0, low_open=True), default=0.9)
    parser.add_argument("--max_new_tokens", type=POSITIVE_INT, default=160)
    parser.add_argument("--gen_batch_size", type=POSITIVE_INT, default=12)
    add_model_args(parser)
    add_peft_args(parser)
    add_quantize_args(parser)
    parser.set_defaults(epochs=1, batch_size=4)
    args = parser.parse_args(argv)
    if args.peft == "reft":
        parser.error("--peft reft: DPO's reference is the policy with its adapters off, and "
                     "ReFT interventions have no off switch here; use --peft lora or none")
    return args


def policy_length(args: argparse.Namespace, policy: GPT2Model) -> int:
    """Tokens per row: --max_length, at most the model's context."""
    return min(args.max_length, policy.config.max_position_embeddings)


def make_loss(args: argparse.Namespace, reference: GPT2Model | None,
              precomputed: tuple[torch.Tensor, torch.Tensor] | None
              ) -> Callable[[GPT2Model, dict[str, Any]], dict[str, torch.Tensor]]:
    """The loop's loss of a batch of pairs (`dpo_losses`), against `precomputed` reference
    log-probabilities (indexed by `batch["index"]`) when given, else `reference`'s (None:
    the policy with its adapters off)."""
    def loss_fn(policy: GPT2Model, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        reference_logps = (tuple(t[batch["index"].cpu()] for t in precomputed)
                           if precomputed is not None else
                           reference_logprobs(policy, reference, batch))
        return dpo_losses(policy, batch, reference_logps, args.beta, args.label_smoothing,
                          args.loss_type, args.reference_free)
    return loss_fn


def save_merged(policy: GPT2Model, path: str) -> None:
    """Rewrite the loop's checkpoint at `path` (LoRA: the adapters only) with the policy's
    merged weights, so that it loads as a plain GPT-2 (`training.checkpoint.model_from_checkpoint`)."""
    state = load_checkpoint(path)
    merge_lora(policy)
    save_checkpoint({**state, "model": policy.state_dict(),
                     "config": {**state["config"], "peft": "none", "merged_from": "lora"}},
                    path)


def main(argv: list[str] | None = None) -> dict:
    args = get_args(argv)
    device = device_from_args(args)
    args.tokenizer = task_tokenizer(args)  # what the run's checkpoints record
    tokenizer = load_tokenizer(args.tokenizer)
    seed_everything(args.seed)
    try:
        policy = load_policy(args, device)
    except CheckpointError as error:
        raise SystemExit(f"--init_checkpoint: {error}") from error
    os.makedirs(args.out_dir, exist_ok=True)
    train, dev = TASKS[args.task][0](args, policy, tokenizer)
    for split, pairs in (("train", require_examples(args.data_dir, train)), ("dev", dev)):
        write_pairs(os.path.join(args.out_dir, f"dpo-{args.task}-{split}-pairs.jsonl"), pairs)
    encode = partial(encode_pairs, tokenizer=tokenizer, max_length=policy_length(args, policy))
    dev_batches = [encode(dev[i:i + args.batch_size]) for i in range(0, len(dev), args.batch_size)]
    loader = make_loader(list(range(len(train))), lambda rows: {
        "index": torch.tensor(rows), **encode([train[i] for i in rows])}, args.batch_size,
        shuffle=True, seed=args.seed)
    reference = None  # the policy with adapters off (or, precomputed, no model at all)
    if args.peft == "none" and not args.precompute_reference:
        reference = copy.deepcopy(policy).requires_grad_(False).eval()
    precomputed = None
    if args.precompute_reference:  # computed in index order, read back by batch["index"]
        ordered = [encode(train[i:i + args.batch_size])
                   for i in range(0, len(train), args.batch_size)]
        with autocast(device):
            chosen, rejected = zip(*(reference_logprobs(policy, None, b) for b in ordered),
                                   strict=True)
        precomputed = (torch.cat(chosen).cpu(), torch.cat(rejected).cpu())  # (N,) each
    with torch.no_grad(), autocast(device):
        before = evaluate(policy, dev_batches, tokenizer, args)
    print(f"[dpo] {len(train)} train / {len(dev)} dev pairs, {args.loss_type} beta "
          f"{args.beta}; before: {before}")
    name = f"dpo-{args.task}"
    lr = args.lr or (1e-6 if args.peft == "none" else 1e-4)
    after = fit(policy, loader, make_loss(args, reference, precomputed), name, args, device,
                lr, partial(evaluate, dev_batches=dev_batches, tokenizer=tokenizer, args=args),
                describe=lambda row: describe_epoch(name, row, before), log_interval=1,
                best_metric="dev_preference_accuracy", last_name=f"{name}.pt")
    checkpoint = os.path.join(args.checkpoint_dir, f"{name}.pt")
    if args.peft == "lora":
        save_merged(policy, checkpoint)
    print(f"[dpo] checkpoint -> {checkpoint}")
    for key in before:
        print(f"[dpo] {key}: before {before[key]:.4f}, after {after[key]:.4f}")
    quantize_for_eval(policy, args, name)  # --quantize: the predictions of the quantized policy
    for path in TASKS[args.task][2](policy, tokenizer, args):
        print(f"[dpo] predictions -> {path}")
    return {"before": before, "after": {key: after[key] for key in before},
            "checkpoint": checkpoint,
            "metrics": os.path.join(args.checkpoint_dir, f"{name}-metrics.jsonl")}


def describe_epoch(name: str, row: dict[str, Any], before: dict[str, float]) -> str:
    """`[dpo-<task>] step N: loss L, reward accuracy A` and each dev score (before -> now)."""
    line = (f"[{name}] step {row['iter']}: loss {row['train_loss']:.4f}, reward accuracy "
            f"{row['train_reward_accuracy']:.4f}")
    return line + "".join(f", {key} {before[key]:.4f} -> {row[key]:.4f}" for key in before)


if __name__ == "__main__":
    main()

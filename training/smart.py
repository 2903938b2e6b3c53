"""SMART (handout 7.7): smoothness-inducing adversarial regularisation with Bregman proximal
point optimisation (Jiang et al., 2020), as `smart-pytorch`'s ``SMARTLoss`` computes it.

A classifier fine-tuned with SMART minimises

    cross-entropy + smart_weight * smart_loss + bregman_weight * symmetric_kl(student, teacher)

- ``smart_loss``: the word embeddings of the batch are pushed by a small noise towards the
  direction that changes the class distribution most (``num_steps`` normalised gradient
  steps), and the symmetric KL between the perturbed and the clean class logits is the
  penalty: the model learns to be smooth around each example.
- the Bregman term: ``MeanTeacher`` keeps an exponential moving average of the model's
  weights (``teacher = beta * teacher + (1 - beta) * student`` after every optimizer step,
  the proximal point with momentum); the symmetric KL between the student's class logits
  and the teacher's (computed without dropout or gradients) keeps each step near it.

``Smart(model, args)`` gives the training loop both: ``loss(model, batch)`` (the total and
its parts ``cross_entropy``, ``smart`` and ``bregman``, each logged as ``train_<part>``)
and ``after_step()`` (the teacher's update).  The perturbation acts on the output of
``model.gpt.word_embedding``, so ``GPT2Model.embed`` must call it.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from training.args import NON_NEGATIVE_FLOAT, POSITIVE_FLOAT, PROBABILITY_BELOW_ONE


def symmetric_kl(input_logits: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
    """The symmetric KL divergence of two sets of logits (handout 7.7).

    Args:
        input_logits: [..., C], e.g. the class logits of perturbed inputs.
        target_logits: [..., C], the same shape, e.g. the clean class logits.
    Returns:
        a scalar: KL(softmax(target.detach()) || softmax(input))
                  + KL(softmax(input.detach()) || softmax(target)),
        each KL summed over the classes (last dimension), the sum averaged over the rows
        (every leading position).  KL(p || q) = sum_c p_c (log p_c - log q_c).  The
        detaches mean the first KL's gradient reaches ``input_logits`` only and the second's
        ``target_logits`` only (smart-pytorch's ``sym_kl_loss``).

    Example: logits [[0, 0]] against [[0, ln 3]] (probabilities (1/2, 1/2) and (1/4, 3/4)):
    KL((1/4, 3/4) || (1/2, 1/2)) + KL((1/2, 1/2) || (1/4, 3/4)) = 0.1308 + 0.1438 = 0.2747.
    """
    ### BEGIN SOLUTION
    input_logp = F.log_softmax(input_logits, dim=-1)  # (..., C)
    target_logp = F.log_softmax(target_logits, dim=-1)  # (..., C)
    fixed_input, fixed_target = input_logp.detach(), target_logp.detach()
    towards_input = (fixed_target.exp() * (fixed_target - input_logp)).sum(dim=-1)  # (...,)
    towards_target = (fixed_input.exp() * (fixed_input - target_logp)).sum(dim=-1)  # (...,)
    return (towards_input + towards_target).mean()
    ### END SOLUTION


def smart_loss(eval_fn: Callable[[torch.Tensor], torch.Tensor], embeddings: torch.Tensor,
               clean_logits: torch.Tensor, *, noise: torch.Tensor, num_steps: int = 1,
               step_size: float = 1e-3, epsilon: float = 1e-6) -> torch.Tensor:
    """SMART's adversarial smoothness penalty (handout 7.7).

    Args:
        eval_fn: embeddings [B, T, D] -> class logits [B, C] (the model, from its input
            embeddings on).
        embeddings: [B, T, D], the clean input embeddings (they may carry gradients).
        clean_logits: [B, C], ``eval_fn(embeddings)``.
        noise: [B, T, D], the initial perturbation (the scripts draw noise_var * randn).
        num_steps: ascent steps on the noise.
        step_size: the ascent step.
        epsilon: added to the norm before dividing by it.
    Returns:
        a scalar.  ``num_steps`` times:
        1. the gradient g of ``symmetric_kl(eval_fn(embeddings + noise),
           clean_logits.detach())`` with respect to the noise (and nothing else:
           ``torch.autograd.grad``);
        2. step = noise + step_size * g;
        3. noise = step / (max |step| over the last dimension, kept [B, T, 1], + epsilon),
           detached.
        Then ``symmetric_kl(eval_fn(embeddings + noise), clean_logits)``: this last one keeps
        ``clean_logits`` attached, so the penalty's gradient reaches the model through both.
    """
    ### BEGIN SOLUTION
    for _ in range(num_steps):
        noise = noise.detach().requires_grad_(True)
        loss = symmetric_kl(eval_fn(embeddings + noise), clean_logits.detach())
        (gradient,) = torch.autograd.grad(loss, noise)
        step = noise + step_size * gradient  # (B, T, D)
        norm = step.abs().amax(dim=-1, keepdim=True)  # (B, T, 1), the infinity norm
        noise = (step / (norm + epsilon)).detach()
    return symmetric_kl(eval_fn(embeddings + noise), clean_logits)
    ### END SOLUTION


@contextlib.contextmanager
def replaced_output(module: nn.Module, output: torch.Tensor) -> Iterator[list[int]]:
    """While open, ``module`` returns ``output`` whatever its input; yields a list that
    counts its calls (a forward that never called it was not perturbed)."""
    calls = [0]

    def hook(module: nn.Module, inputs: Any, result: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return output

    handle = module.register_forward_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()


class MeanTeacher:
    """A frozen copy of ``model`` that follows it as an exponential moving average: after
    each ``update()``, teacher = beta * teacher + (1 - beta) * student, for every trainable
    parameter (the others never change).  ``logits(batch)`` run it in eval mode without
    gradients."""

    def __init__(self, model: nn.Module, beta: float):
        self.beta = beta
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        pairs = [(mine, theirs) for mine, theirs in zip(self.model.parameters(),
                                                        model.parameters(), strict=True)
                 if theirs.requires_grad]
        self.mine, self.theirs = [m for m, _ in pairs], [t for _, t in pairs]

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_lerp_(self.mine, [t.detach() for t in self.theirs], 1.0 - self.beta)

    @torch.no_grad()
    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.model(batch["input_ids"], batch["attention_mask"]).float()  # (B, C)


def add_smart_args(parser: argparse.ArgumentParser) -> None:
    """SMART's flags (handout 7.7); both terms are off at weight 0 (the default)."""
    parser.add_argument("--smart_weight", type=NON_NEGATIVE_FLOAT, default=0.0,
                        help="weight of SMART's adversarial smoothness penalty (0: off)")
    parser.add_argument("--smart_noise_var", type=POSITIVE_FLOAT, default=1e-5,
                        help="the initial noise is smart_noise_var * randn")
    parser.add_argument("--smart_step_size", type=POSITIVE_FLOAT, default=1e-3,
                        help="the noise's ascent step")
    parser.add_argument("--smart_epsilon", type=POSITIVE_FLOAT, default=1e-6,
                        help="added to the noise's infinity norm before dividing by it")
    parser.add_argument("--bregman_weight", type=NON_NEGATIVE_FLOAT, default=0.0,
                        help="weight of the Bregman proximal term, the symmetric KL to a "
                             "mean teacher (0: off)")
    parser.add_argument("--bregman_beta", type=PROBABILITY_BELOW_ONE, default=0.99,
                        help="the mean teacher's moving-average weight")


class Smart:
    """The SMART objective of a classifier ``model`` (``model.gpt`` its GPT2Model;
    ``model(input_ids, attention_mask)`` its class logits [B, C]) for the one loop.

    ``args`` holds the flags of ``add_smart_args``.  ``loss(model, batch)`` returns
    {'loss', 'cross_entropy', 'smart', 'bregman'} (a term whose weight is 0 is not computed
    and logs 0); ``after_step()`` updates the mean teacher.
    """

    def __init__(self, model: nn.Module, args: argparse.Namespace):
        self.args = args
        self.word_embedding = model.gpt.word_embedding
        self.teacher = MeanTeacher(model, args.bregman_beta) if args.bregman_weight else None

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        args = self.args
        ids, mask = batch["input_ids"], batch["attention_mask"]

        def eval_fn(embeddings: torch.Tensor) -> torch.Tensor:
            with replaced_output(self.word_embedding, embeddings) as calls:
                logits = model(ids, mask).float()  # (B, C)
            if calls[0] != 1:
                raise RuntimeError("SMART perturbs the output of gpt.word_embedding, which "
                                   f"this forward called {calls[0]} times instead of once: "
                                   "GPT2Model.embed must call self.word_embedding(input_ids)")
            return logits

        embeddings = self.word_embedding(ids)  # (B, T, D)
        logits = eval_fn(embeddings)
        cross_entropy = F.cross_entropy(logits, batch["labels"])
        zero = torch.zeros((), device=logits.device)
        smart = zero
        if args.smart_weight:
            noise = torch.randn_like(embeddings) * args.smart_noise_var
            smart = smart_loss(eval_fn, embeddings, logits, noise=noise,
                               step_size=args.smart_step_size, epsilon=args.smart_epsilon)
        bregman = zero
        if self.teacher is not None:
            bregman = symmetric_kl(logits, self.teacher.logits(batch))
        total = cross_entropy + args.smart_weight * smart + args.bregman_weight * bregman
        return {"loss": total, "cross_entropy": cross_entropy, "smart": smart,
                "bregman": bregman}

    def after_step(self) -> None:
        if self.teacher is not None:
            self.teacher.update()

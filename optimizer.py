"""AdamW, written from the update rule (handout 4)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch.optim import Optimizer


class AdamW(Optimizer):
    def __init__(self, params: Iterable[torch.nn.Parameter] | Iterable[dict],
                 lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.0, correct_bias: bool = True):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr} - should be >= 0.0")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter: {betas[0]} - should be in [0.0, 1.0)")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter: {betas[1]} - should be in [0.0, 1.0)")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps} - should be >= 0.0")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay} - should be >= 0.0")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        correct_bias=correct_bias)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One AdamW update of every parameter that has a gradient (handout 4).

        For each parameter p with gradient g, using its group's lr, (b1, b2), eps,
        weight_decay and correct_bias, and its state (created on first use):
          state["step"] = t (an int, starting at 1 for the first update),
          state["exp_avg"] = m, state["exp_avg_sq"] = v (tensors shaped like p, from zeros):
        1. m = b1 * m + (1 - b1) * g;  v = b2 * v + (1 - b2) * g * g
        2. alpha_t = lr * sqrt(1 - b2^t) / (1 - b1^t) if correct_bias else lr
        3. p = p - alpha_t * m / (sqrt(v) + eps)
        4. p = p - lr * weight_decay * p     (decoupled weight decay, after the update)
        Skip parameters whose .grad is None; raise RuntimeError for sparse gradients.
        Returns the closure's loss when a closure is given.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        ### BEGIN SOLUTION
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise RuntimeError("AdamW does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(grad, alpha=1.0 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                alpha = group["lr"]
                if group["correct_bias"]:
                    alpha = alpha * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
                p.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-alpha)
                if group["weight_decay"] > 0.0:
                    p.mul_(1.0 - group["lr"] * group["weight_decay"])
        ### END SOLUTION
        return loss

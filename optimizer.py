"""AdamW, written from the update rule (handout 4), and the preconditioned optimizers
Muon and Shampoo for the 2-D matrices of the transformer blocks (handout 7.6)."""

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


# --- preconditioned optimizers (handout 7.6) -------------------------------------------

MUON_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # Keller Jordan's quintic (a, b, c)
ADJUST_LR_FNS = (None, "original", "match_rms_adamw")  # Muon's learning-rate adjustments


def newton_schulz(G: torch.Tensor, steps: int,
                  coefficients: tuple[float, float, float] = MUON_COEFFICIENTS,
                  eps: float = 1e-7) -> torch.Tensor:
    """The orthogonalisation Muon applies to its update (handout 7.6).  G [m, n] -> [m, n].

    In G's own dtype (not bfloat16), with (a, b, c) = coefficients:
    1. X = G, transposed when G is tall (m > n), so that X X^T is the smaller Gram matrix;
    2. X = X / max(||X||_F, eps);
    3. `steps` times: A = X X^T;  X = a X + (b A + c A A) X;
    4. transposed back when G was tall.
    The result is close to U V^T of G's SVD G = U S V^T: its singular values lie near 1
    (in about [0.5, 1.5] after 5 steps of the default quintic, which trades exactness for
    speed), its singular vectors are G's.
    """
    ### BEGIN SOLUTION
    a, b, c = coefficients
    tall = G.shape[0] > G.shape[1]
    X = G.T if tall else G  # (min(m, n), max(m, n))
    X = X / X.norm().clamp(min=eps)
    for _ in range(steps):
        A = X @ X.T  # (min, min)
        X = a * X + (b * A + c * A @ A) @ X
    return X.T if tall else X
    ### END SOLUTION


def _check_matrices(name: str, param_groups: list[dict]) -> None:
    """ValueError naming the shape of a parameter that is not a 2-D matrix."""
    for group in param_groups:
        for p in group["params"]:
            if p.dim() != 2:
                raise ValueError(f"{name} takes 2-D matrices only, got a parameter of shape "
                                 f"{tuple(p.shape)}; give biases, gains and embeddings to "
                                 "AdamW")


class Muon(Optimizer):
    """Momentum, orthogonalised by Newton-Schulz (Keller Jordan's Muon, the algorithm of
    `torch.optim.Muon`), for 2-D parameters: the matrices of the transformer blocks.
    `adjust_lr_fn` scales the learning rate per matrix [rows, cols]: None or "original"
    by sqrt(max(1, rows / cols)), "match_rms_adamw" by 0.2 * sqrt(max(rows, cols))."""

    def __init__(self, params: Iterable[torch.nn.Parameter] | Iterable[dict],
                 lr: float = 0.02, momentum: float = 0.95, nesterov: bool = True,
                 ns_steps: int = 5,
                 ns_coefficients: tuple[float, float, float] = MUON_COEFFICIENTS,
                 eps: float = 1e-7, weight_decay: float = 0.0,
                 adjust_lr_fn: str | None = None):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr} - should be >= 0.0")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"Invalid momentum: {momentum} - should be in [0.0, 1.0)")
        if ns_steps < 1:
            raise ValueError(f"Invalid ns_steps: {ns_steps} - should be >= 1")
        if len(ns_coefficients) != 3:
            raise ValueError(f"Invalid ns_coefficients: {ns_coefficients} - should be (a, b, c)")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps} - should be >= 0.0")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay} - should be >= 0.0")
        if adjust_lr_fn not in ADJUST_LR_FNS:
            raise ValueError(f"Invalid adjust_lr_fn: {adjust_lr_fn!r} - choose one of "
                             f"{list(ADJUST_LR_FNS)}")
        defaults = dict(lr=lr, momentum=momentum, nesterov=nesterov, ns_steps=ns_steps,
                        ns_coefficients=tuple(ns_coefficients), eps=eps,
                        weight_decay=weight_decay, adjust_lr_fn=adjust_lr_fn)
        super().__init__(params, defaults)
        _check_matrices("Muon", self.param_groups)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One Muon update of every parameter that has a gradient (handout 7.6).

        For each 2-D parameter p [rows, cols] with gradient g, using its group's lr,
        momentum mu, nesterov, ns_steps, ns_coefficients, eps, weight_decay and
        adjust_lr_fn, and its state["momentum_buffer"] = buf (shaped like p, from zeros):
        1. buf = buf.lerp(g, 1 - mu)            (buf = mu * buf + (1 - mu) * g)
        2. u = g.lerp(buf, mu) if nesterov else buf
        3. O = newton_schulz(u, ns_steps, ns_coefficients, eps)   (the function above)
        4. p = p * (1 - lr * weight_decay)       (decoupled decay, with the unadjusted lr)
        5. p = p - lr * ratio * O, ratio = sqrt(max(1, rows / cols)) when adjust_lr_fn is
           None or "original", 0.2 * sqrt(max(rows, cols)) when "match_rms_adamw".
        Skip parameters whose .grad is None.  Returns the closure's loss when given one.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        ### BEGIN SOLUTION
        for group in self.param_groups:
            momentum, lr = group["momentum"], group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if not state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.lerp_(grad, 1.0 - momentum)
                update = grad.lerp(buf, momentum) if group["nesterov"] else buf
                update = newton_schulz(update, group["ns_steps"], group["ns_coefficients"],
                                       group["eps"])
                rows, cols = p.shape
                if group["adjust_lr_fn"] == "match_rms_adamw":
                    ratio = 0.2 * math.sqrt(max(rows, cols))
                else:
                    ratio = math.sqrt(max(1.0, rows / cols))
                p.mul_(1.0 - lr * group["weight_decay"])
                p.add_(update, alpha=-lr * ratio)
        ### END SOLUTION
        return loss


class Shampoo(Optimizer):
    """Shampoo (Gupta, Koren and Singer 2018) with exponential averages of the Kronecker
    factors, for 2-D parameters: each matrix G [m, n] is preconditioned on both sides by
    the inverse fourth roots of L [m, m] and R [n, n]."""

    def __init__(self, params: Iterable[torch.nn.Parameter] | Iterable[dict], lr: float,
                 beta2: float = 0.999, eps: float = 1e-12, update_every: int = 1,
                 momentum: float = 0.0, weight_decay: float = 0.0):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr} - should be >= 0.0")
        if not 0.0 <= beta2 < 1.0:
            raise ValueError(f"Invalid beta2: {beta2} - should be in [0.0, 1.0)")
        if eps <= 0.0:
            raise ValueError(f"Invalid epsilon value: {eps} - should be > 0.0")
        if update_every < 1:
            raise ValueError(f"Invalid update_every: {update_every} - should be >= 1")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"Invalid momentum: {momentum} - should be in [0.0, 1.0)")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay} - should be >= 0.0")
        defaults = dict(lr=lr, beta2=beta2, eps=eps, update_every=update_every,
                        momentum=momentum, weight_decay=weight_decay)
        super().__init__(params, defaults)
        _check_matrices("Shampoo", self.param_groups)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One Shampoo update of every parameter that has a gradient (handout 7.6).

        For each 2-D parameter p [m, n] with gradient G, using its group's lr, beta2, eps,
        update_every, momentum and weight_decay, and its state (created on first use):
          state["step"] = t (an int, 1 at the first update),
          state["left"] = L [m, m] and state["right"] = R [n, n] (from zeros),
          state["left_root"], state["right_root"]: the inverse fourth roots in use,
          state["momentum_buffer"] = buf (shaped like p, from zeros; when momentum > 0):
        1. L = beta2 L + (1 - beta2) G G^T;  R = beta2 R + (1 - beta2) G^T G
        2. when (t - 1) % update_every == 0 (t = 1, 1 + update_every, ...), recompute
           left_root = (L + eps I)^(-1/4) and right_root = (R + eps I)^(-1/4) from
           torch.linalg.eigh: for M = Q diag(w) Q^T, (M + eps I)^(-1/4) =
           Q diag((max(w, 0) + eps)^(-1/4)) Q^T (w clipped at 0: L and R are positive
           semi-definite, eigh's rounding is not); other steps reuse the stored roots
        3. u = left_root G right_root
        4. buf = momentum * buf + u; u = buf    (heavy ball; momentum 0 leaves u as it is)
        5. p = p * (1 - lr * weight_decay)       (decoupled decay)
        6. p = p - lr * u
        Skip parameters whose .grad is None.  Returns the closure's loss when given one.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        ### BEGIN SOLUTION
        for group in self.param_groups:
            beta2, eps, lr = group["beta2"], group["eps"], group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if not state:
                    m, n = p.shape
                    state["step"] = 0
                    state["left"] = torch.zeros(m, m, dtype=p.dtype, device=p.device)
                    state["right"] = torch.zeros(n, n, dtype=p.dtype, device=p.device)
                    state["left_root"] = torch.zeros_like(state["left"])
                    state["right_root"] = torch.zeros_like(state["right"])
                state["step"] += 1
                left, right = state["left"], state["right"]
                left.mul_(beta2).add_(grad @ grad.T, alpha=1.0 - beta2)  # (m, m)
                right.mul_(beta2).add_(grad.T @ grad, alpha=1.0 - beta2)  # (n, n)
                if (state["step"] - 1) % group["update_every"] == 0:
                    for name, factor in (("left_root", left), ("right_root", right)):
                        w, Q = torch.linalg.eigh(factor)
                        roots = (w.clamp(min=0.0) + eps).pow(-0.25)
                        state[name] = (Q * roots) @ Q.T
                update = state["left_root"] @ grad @ state["right_root"]  # (m, n)
                if group["momentum"] > 0.0:
                    buf = state.setdefault("momentum_buffer", torch.zeros_like(p))
                    buf.mul_(group["momentum"]).add_(update)
                    update = buf
                p.mul_(1.0 - lr * group["weight_decay"])
                p.add_(update, alpha=-lr)
        ### END SOLUTION
        return loss

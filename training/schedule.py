"""The learning-rate schedule: linear warmup, then cosine decay to a floor (nanoGPT's)."""

from __future__ import annotations

import math


def lr_at(step: int, learning_rate: float, min_lr: float, warmup_iters: int,
          lr_decay_iters: int, decay_lr: bool = True) -> float:
    """The learning rate of optimizer step ``step`` (0-based), as nanoGPT's ``get_lr``.

    - ``decay_lr=False``: ``learning_rate`` at every step;
    - warmup, ``step < warmup_iters``: ``learning_rate * (step + 1) / (warmup_iters + 1)``;
    - ``warmup_iters <= step <= lr_decay_iters``: cosine from ``learning_rate`` down to
      ``min_lr``: ``min_lr + 0.5 * (1 + cos(pi * r)) * (learning_rate - min_lr)`` with
      ``r = (step - warmup_iters) / (lr_decay_iters - warmup_iters)``;
    - after ``lr_decay_iters``: ``min_lr``.

    Example: learning_rate 1e-3, min_lr 1e-4, warmup 10, decay 110 gives 1e-3 / 11 at step
    0, 1e-3 at step 10, 5.5e-4 at step 60 (halfway), 1e-4 at step 110 and after.
    """
    if not decay_lr:
        return learning_rate
    if lr_decay_iters <= warmup_iters:
        raise ValueError(f"lr_decay_iters ({lr_decay_iters}) must be greater than "
                         f"warmup_iters ({warmup_iters})")
    if step < warmup_iters:
        return learning_rate * (step + 1) / (warmup_iters + 1)
    if step > lr_decay_iters:
        return min_lr
    ratio = (step - warmup_iters) / (lr_decay_iters - warmup_iters)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (learning_rate - min_lr)

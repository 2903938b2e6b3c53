"""Producers: the code the sandboxed child runs for each case (never run in the judge).

A producer takes a case's JSON `params`, builds seeded inputs, calls the student's code
(imported lazily, from the staged submission) and returns `{key: numpy array}`.  It only
*produces* arrays; all comparing happens in the parent (`autograder/judge.py`).  Outputs
must be plain `torch.Tensor`s: a subclass is refused, so that no student type can change
how its values are read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Producer = Callable[[dict[str, Any]], dict[str, np.ndarray]]


def to_numpy(value: Any, what: str) -> np.ndarray:
    """A plain copy of a tensor's values; raises TypeError for anything but a torch.Tensor."""
    import torch

    if type(value) is not torch.Tensor:
        raise TypeError(f"{what} must be a plain torch.Tensor, got {type(value).__module__}."
                        f"{type(value).__qualname__}")
    tensor = torch.Tensor.detach(value).cpu()
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(f"{what} has dtype {tensor.dtype}; expected a real number dtype")
    array = np.array(tensor.tolist() if tensor.dtype == torch.bfloat16 else tensor.numpy(),
                     copy=True)
    return array


def registry() -> dict[str, Producer]:
    """name -> producer; imported here so that the child loads only what it runs."""
    from autograder.producers import bpe, model, optim

    return {**model.PRODUCERS, **optim.PRODUCERS, **bpe.PRODUCERS}

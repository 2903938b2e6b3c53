"""Producers for sliding-window attention and attention sinks (handout 7.8).

`visible_keys` is a pure function of four numbers: each case calls it on a few shapes and
returns each answer as 0/1 integers, with whether it was a torch.bool tensor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autograder.producers import to_numpy


def visible_keys(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`visible_keys(T_q, T_k, window, sinks)` for each [T_q, T_k, window, sinks] of
    params["calls"] (window null: no window): "visible_<n>" [T_q, T_k] int64 and
    "bool_<n>" [1], 1 when the answer was a torch.bool tensor."""
    import torch

    from modules.attention import visible_keys as student

    result = {}
    for n, (T_q, T_k, window, sinks) in enumerate(params["calls"]):
        out = student(T_q, T_k, window, sinks)
        if type(out) is not torch.Tensor:
            raise TypeError(f"visible_keys({T_q}, {T_k}, {window}, {sinks}) must return a "
                            f"torch.Tensor, got {type(out).__name__}")
        result[f"bool_{n}"] = np.array([int(out.dtype == torch.bool)], dtype=np.int64)
        result[f"visible_{n}"] = to_numpy(torch.Tensor.to(out, torch.int64),
                                          f"visible_keys({T_q}, {T_k}, {window}, {sinks})")
    return result


PRODUCERS = {"visible_keys": visible_keys}

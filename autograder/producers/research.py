"""Producers for the research architectures (handout 9): ALiBi, rotary embeddings,
SwiGLU, the z-loss and mu-centering.  Each fenced function is a pure tensor function, run
on seeded inputs.  The rotations turn by seeded angles, not by rotary tables: their rule
holds for any cos and sin, so a rotation case does not depend on `rotary_tables`, and no
solution of a graded function has to ship with the producers (this folder is in the
handout).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autograder.producers import to_numpy


def _randn(seed: int, *shape: int):
    import torch

    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _positions(params: dict[str, Any], key: str):
    """[B, T] long positions: `params[key]` as given (rows may differ: padding, a cache)."""
    import torch

    return torch.tensor(params[key], dtype=torch.long)


def alibi_slopes(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`alibi_slopes(H)` for every H of params["heads"]."""
    from modules.positions import alibi_slopes as student

    return {f"slopes_{h}": to_numpy(student(h), f"alibi_slopes({h})") for h in params["heads"]}


def alibi_bias(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`alibi_bias` on seeded positive slopes [H] and the given positions."""
    from modules.positions import alibi_bias as student

    slopes = _randn(params["seed"], params["H"]).abs()
    bias = student(slopes, _positions(params, "query_positions"),
                   _positions(params, "key_positions"))
    return {"bias": to_numpy(bias, "alibi bias")}


def rotary_tables(params: dict[str, Any]) -> dict[str, np.ndarray]:
    from modules.positions import rotary_tables as student

    cos, sin = student(_positions(params, "positions"), params["rotary_dims"], params["theta"])
    return {"cos": to_numpy(cos, "cos"), "sin": to_numpy(sin, "sin")}


def rotate(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`rotate_half` or `rotate_interleaved` (params["layout"]) of seeded x [B, H, T, d]
    by seeded angles [B, 1, T, r/2] (r = params["rotary_dims"]), given as their cos, sin."""
    from modules import positions as module

    student = {"half": module.rotate_half, "interleaved": module.rotate_interleaved}
    B, H, T, d, r = (params[key] for key in ("B", "H", "T", "d", "rotary_dims"))
    x = _randn(params["seed"], B, H, T, d)
    angles = _randn(params["seed"] + 1, B, 1, T, r // 2) * 3.0  # (B, 1, T, r/2)
    return {"out": to_numpy(student[params["layout"]](x, angles.cos(), angles.sin()),
                            "rotated x")}


def swiglu(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`swiglu(gate, value)` on seeded [*shape] inputs, and its input gradients."""
    from modules.mlp import swiglu as student

    gate = (_randn(params["seed"], *params["shape"]) * 3).requires_grad_(True)
    value = _randn(params["seed"] + 1, *params["shape"]).requires_grad_(True)
    out = student(gate, value)
    (out * _randn(params["seed"] + 2, *params["shape"])).sum().backward()
    return {"out": to_numpy(out, "swiglu output"), "d_gate": to_numpy(gate.grad, "d gate"),
            "d_value": to_numpy(value.grad, "d value")}


def z_loss(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`z_loss` of seeded logits [*shape] (scaled by params["scale"]) and its gradient.

    params["dtype"] (default "float32") is the logits' dtype; with "bfloat16" only the loss
    is returned (its dtype shows where it was computed; a bf16 gradient would round
    differently for equally correct float32 computations).
    """
    import torch

    from training.losses import z_loss as student

    dtype = getattr(torch, params.get("dtype", "float32"))
    logits = (_randn(params["seed"], *params["shape"]) * params["scale"]).to(dtype)
    loss = student(logits.requires_grad_(True), params["gamma"])
    result = {"loss": to_numpy(loss, "z-loss")}
    if dtype == torch.float32:
        loss.backward()
        result["d_logits"] = to_numpy(logits.grad, "d logits")
    return result


def mu_center(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`mu_center_` of a seeded [V, D] embedding: the tensor afterwards, and [1] when the
    call returned that same tensor (in place), else [0]."""
    embedding = _randn(params["seed"], params["V"], params["D"]) + 0.5
    from training.losses import mu_center_ as student

    returned = student(embedding)
    return {"after": to_numpy(embedding, "embedding after mu_center_"),
            "in_place": np.array([int(returned is embedding)], dtype=np.int64)}


PRODUCERS = {"alibi_slopes": alibi_slopes, "alibi_bias": alibi_bias,
             "rotary_tables": rotary_tables, "rotate": rotate, "swiglu": swiglu,
             "z_loss": z_loss, "mu_center": mu_center}

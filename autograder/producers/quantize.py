"""Producers for the quantization part (handout 7.4): `quantize_int8` of a seeded weight,
and `Int8Linear.forward` of a layer whose codes, scales and bias are seeded directly (so
that a bug in `quantize_int8` costs nothing there)."""

from __future__ import annotations

from typing import Any

import numpy as np

from autograder.producers import to_numpy

TIE_STEP = 0.25  # a tie row's scale: its entries are (k + 0.5) * 0.25, exact in float32


def _generator(seed: int):
    import torch

    return torch.Generator().manual_seed(seed)


def quantize_int8(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`quantize_int8` of a seeded weight [out, in] (params["dtype"], default float32):
    rows params["zero_rows"] all zero, rows params["tie_rows"] with max 127 * 0.25 and every
    other entry a half-way point (k + 0.5) * 0.25, so that rounding half to even shows."""
    import torch

    from modules.quantize import quantize_int8 as student

    out, width, seed = params["out"], params["in"], params["seed"]
    dtype = getattr(torch, params.get("dtype", "float32"))
    weight = torch.randn(out, width, generator=_generator(seed), dtype=torch.float64)
    weight *= params.get("scale", 1.0)
    for row in params.get("tie_rows", []):
        codes = torch.randint(-126, 126, (width,), generator=_generator(seed + 1 + row))
        weight[row] = (codes.double() + 0.5) * TIE_STEP
        weight[row, row % width] = 127 * TIE_STEP * (-1 if row % 2 else 1)
    for row in params.get("zero_rows", []):
        weight[row] = 0.0
    q, scale = student(weight.to(dtype))
    return {"q": to_numpy(q, "q"), "scale": to_numpy(scale, "scale")}


def int8_linear(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`Int8Linear.forward` of seeded x [*shape, in] (params["dtype"]) through an
    `Int8Linear(in, out, bias)` whose q, scale and bias are seeded; the output and the
    gradient of x under a seeded weighting."""
    import torch

    from modules.quantize import Int8Linear

    width, out, seed = params["in"], params["out"], params["seed"]
    bias = params.get("bias", True)
    dtype = getattr(torch, params.get("dtype", "float32"))
    layer = Int8Linear(width, out, bias)
    layer.q = torch.randint(-127, 128, (out, width), generator=_generator(seed),
                            dtype=torch.int8)
    layer.scale = torch.rand(out, generator=_generator(seed + 1)) * 0.02 + 0.001
    if bias:
        layer.bias = torch.randn(out, generator=_generator(seed + 2))
    x = torch.randn(*params["shape"], width, generator=_generator(seed + 3)).to(dtype)
    x.requires_grad_(True)
    y = layer(x)
    weights = torch.randn(y.shape, generator=_generator(seed + 4)).to(y.dtype)
    (y * weights).sum().backward()
    return {"out": to_numpy(y, "Int8Linear output"),
            "d_x": to_numpy(x.grad if x.grad is not None else torch.zeros(0), "d x")}


PRODUCERS = {"quantize_int8": quantize_int8, "int8_linear": int8_linear}

"""Producers for the ReFT part (handout 7.5): `LoReFTIntervention.forward` with a seeded
orthonormal R and a seeded `learned_source`."""

from __future__ import annotations

from typing import Any

import numpy as np

from autograder.producers import to_numpy


def reft_forward(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """The submission's `LoReFTIntervention(D, r, dropout)` (params["dtype"], default
    float32) with R the orthonormal rows of a seeded QR factor and seeded W, b, applied to
    seeded h [*shape, D]: in eval mode the output and the gradients of h, W and b under a
    seeded weighting; with params["train"], the output in training mode after
    torch.manual_seed(seed)."""
    import torch

    from modules.reft import LoReFTIntervention

    D, r, seed = params["D"], params["r"], params["seed"]
    dtype = getattr(torch, params.get("dtype", "float32"))
    generator = torch.Generator().manual_seed(seed)
    module = LoReFTIntervention(D, r, params.get("dropout", 0.0)).to(dtype)
    rows = torch.linalg.qr(torch.randn(D, r, generator=generator, dtype=torch.float64))[0]
    with torch.no_grad():
        module.rotate_layer.weight = rows.T.contiguous().to(dtype)  # (r, D)
        module.learned_source.weight.copy_(torch.randn(r, D, generator=generator))
        module.learned_source.bias.copy_(torch.randn(r, generator=generator))
    h = torch.randn(*params["shape"], D, generator=generator).to(dtype)
    if params.get("train"):
        module.train()
        torch.manual_seed(seed)
        with torch.no_grad():
            return {"train": to_numpy(module(h), "LoReFTIntervention output in training mode")}
    module.eval()
    h.requires_grad_(True)
    out = module(h)
    (out * torch.randn(out.shape, generator=generator).to(out.dtype)).sum().backward()
    grads = {"d_h": h.grad, "d_W": module.learned_source.weight.grad,
             "d_b": module.learned_source.bias.grad}
    return {"out": to_numpy(out, "LoReFTIntervention output"),
            **{key: to_numpy(grad if grad is not None else torch.zeros(0), key)
               for key, grad in grads.items()}}


PRODUCERS = {"reft_forward": reft_forward}

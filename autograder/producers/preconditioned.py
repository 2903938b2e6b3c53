"""Producers for the preconditioned optimizers (handout 7.6): `newton_schulz`, `Muon.step`
and `Shampoo.step`, in float64 so that any order of the same arithmetic agrees far inside
the tolerance.

`newton_schulz` runs on a seeded matrix [rows, cols] (scaled by params["scale"]; 0 gives
the zero matrix).  The optimizers take a few steps on seeded gradients written straight
into `.grad` (no loss), so a case checks the update rule alone: params "shapes" (one 2-D
shape per parameter), "steps", "seed", "groups" (hyper-parameter dicts, parameter i going
to group i % len(groups)) and "frozen" (parameters that never get a gradient).
`Muon.step` runs with the trusted `newton_schulz` in place of the submission's, so that
one bug costs only the cases of its own rule (`trusted.solution`: the student's own in
their copy of the handout).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autograder.producers import NOTES, lines_array, to_numpy, trusted


def _generator(seed: int):
    import torch

    return torch.Generator().manual_seed(seed)


def newton_schulz(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`newton_schulz(G, steps, coefficients, eps)` of a seeded float64 G [rows, cols]."""
    import torch

    torch.set_num_threads(1)
    from optimizer import newton_schulz as student

    G = torch.randn(params["rows"], params["cols"], dtype=torch.float64,
                    generator=_generator(params["seed"])) * params["scale"]
    out = student(G, params["steps"], tuple(params["coefficients"]), params["eps"])
    return {"X": to_numpy(out, "newton_schulz's result")}


def _steps(optimizer_class, params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`params["steps"]` steps of `optimizer_class` over seeded float64 parameters: each
    parameter after the first step and after the last."""
    import torch

    torch.set_num_threads(1)
    generator = _generator(params["seed"])
    weights = [torch.nn.Parameter(torch.randn(*shape, dtype=torch.float64,
                                              generator=generator))
               for shape in params["shapes"]]
    groups = params["groups"]
    optimizer = optimizer_class([
        {"params": [w for i, w in enumerate(weights) if i % len(groups) == g],
         **{k: tuple(v) if isinstance(v, list) else v for k, v in hyper.items()}}
        for g, hyper in enumerate(groups)], lr=groups[0]["lr"])  # Shampoo's lr has no default
    frozen = set(params.get("frozen", []))
    result = {}
    for step in range(params["steps"]):
        for i, weight in enumerate(weights):
            grad = torch.randn(weight.shape, dtype=torch.float64, generator=generator)
            weight.grad = None if i in frozen else grad
        optimizer.step()
        if step == 0:
            result.update({f"step1_p{i}": to_numpy(w.detach(), f"parameter {i} after step 1")
                           for i, w in enumerate(weights)})
    result.update({f"final_p{i}": to_numpy(w.detach(), f"parameter {i} after the last step")
                   for i, w in enumerate(weights)})
    return result


def muon(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """Steps of the submission's `Muon`, orthogonalising with the trusted `newton_schulz`."""
    import optimizer

    stand_in, note = trusted.stand_in("newton_schulz", getattr(optimizer, "newton_schulz", None))
    saved = getattr(optimizer, "newton_schulz", None)
    optimizer.newton_schulz = stand_in
    try:
        result = _steps(optimizer.Muon, params)
    finally:
        optimizer.newton_schulz = saved
    return {**result, NOTES: lines_array([note])} if note else result


def shampoo(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """Steps of the submission's `Shampoo`."""
    from optimizer import Shampoo

    return _steps(Shampoo, params)


PRODUCERS = {"newton_schulz": newton_schulz, "muon": muon, "shampoo": shampoo}

"""Producer for `optimizer.AdamW.step`: a few steps on seeded gradients.

The gradients are written straight into `.grad` (no loss), so the case checks the update
rule alone.  params: shapes (one per parameter), steps, seed, and `groups`: a list of
hyper-parameter dicts (lr, betas, eps, weight_decay, correct_bias), parameter i going to
group i % len(groups).  `frozen` lists parameters that never get a gradient (skipped).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autograder.producers import to_numpy


def adamw(params: dict[str, Any]) -> dict[str, np.ndarray]:
    import torch

    torch.set_num_threads(1)
    from optimizer import AdamW

    generator = torch.Generator().manual_seed(params["seed"])
    weights = [torch.nn.Parameter(torch.randn(*shape, generator=generator))
               for shape in params["shapes"]]
    groups = params["groups"]
    param_groups = [
        {"params": [w for i, w in enumerate(weights) if i % len(groups) == g],
         **{k: tuple(v) if k == "betas" else v for k, v in hyper.items()}}
        for g, hyper in enumerate(groups)
    ]
    optimizer = AdamW(param_groups)
    frozen = set(params.get("frozen", []))
    result = {}
    for step in range(params["steps"]):
        for i, weight in enumerate(weights):
            grad = torch.randn(weight.shape, generator=generator)
            weight.grad = None if i in frozen else grad
        optimizer.step()
        if step == 0:
            result.update({f"step1_p{i}": to_numpy(w.detach(), f"parameter {i} after step 1")
                           for i, w in enumerate(weights)})
    result.update({f"final_p{i}": to_numpy(w.detach(), f"parameter {i} after the last step")
                   for i, w in enumerate(weights)})
    return result


PRODUCERS = {"adamw": adamw}

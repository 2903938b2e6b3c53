"""Producers for the ensembles part (handout 7.9): `ensemble_probabilities` of seeded
member logits."""

from __future__ import annotations

from typing import Any

import numpy as np

from autograder.producers import to_numpy


def ensemble_probabilities(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`ensemble_probabilities` of a list of M seeded logits [N, C] (params["dtype"], default
    float32), member m's times params["scales"][m]: a member with a large scale is
    confident, one with a small scale nearly uniform."""
    import torch

    from training.finetune import ensemble_probabilities as student

    N, C, seed = params["N"], params["C"], params["seed"]
    dtype = getattr(torch, params.get("dtype", "float32"))
    logits = [torch.randn(N, C, generator=torch.Generator().manual_seed(seed + m),
                          dtype=torch.float64) * scale
              for m, scale in enumerate(params["scales"])]
    return {"probabilities": to_numpy(student([x.to(dtype) for x in logits]),
                                      "ensemble_probabilities")}


PRODUCERS = {"ensemble_probabilities": ensemble_probabilities}

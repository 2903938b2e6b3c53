"""Producers for the SMART part (handout 7.7).

`symmetric_kl` runs on seeded logits; `smart_loss` runs with the trusted `symmetric_kl` in
place of the submission's (`trusted.solution`: the student's own in their copy of the
handout), so that one bug costs only the cases of its rule, and with a trusted `eval_fn`:
a small seeded network, logits = (tanh(x W1) * mask).sum(T) W2, [B, T, D] -> [B, C].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autograder.producers import NOTES, lines_array, to_numpy, trusted


def _randn(seed: int, *shape: int, dtype=None):
    import torch

    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def symmetric_kl(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`symmetric_kl` of seeded input and target logits [*shape, C] (times params["scale"]),
    and the gradients of the value with respect to both."""
    from training.smart import symmetric_kl as student

    shape, scale, seed = params["shape"], params["scale"], params["seed"]
    inputs = (_randn(seed, *shape) * scale).requires_grad_(True)
    target = (_randn(seed + 1, *shape) * scale).requires_grad_(True)
    value = student(inputs, target)
    value.backward()
    return {"kl": to_numpy(value, "symmetric_kl"),
            "d_input": to_numpy(inputs.grad, "gradient of input_logits"),
            "d_target": to_numpy(target.grad, "gradient of target_logits")}


def smart_loss(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`smart_loss` with the trusted `symmetric_kl` and eval_fn on seeded embeddings
    [B, T, D] and noise (times params["noise_scale"]): the loss, its gradients with respect
    to the embeddings and the eval_fn's weights, and the noise of each call to eval_fn
    ([num_steps + 1, B, T, D], what it got minus the embeddings).

    All in float64: each ascent step normalises a gradient of the KL between two nearly
    equal distributions, whose float32 rounding differs between CPUs (BLAS kernels) by more
    than the case's tolerance; in float64 that rounding is far below it."""
    import torch

    import training.smart as smart

    B, T, D, H, C = (params[key] for key in ("B", "T", "D", "H", "C"))
    seed = params["seed"]
    f64 = torch.float64
    embeddings = _randn(seed, B, T, D, dtype=f64).requires_grad_(True)
    noise = _randn(seed + 1, B, T, D, dtype=f64) * params["noise_scale"]
    w1 = (_randn(seed + 2, D, H, dtype=f64) / D ** 0.5).requires_grad_(True)
    w2 = (_randn(seed + 3, H, C, dtype=f64) * 2.0).requires_grad_(True)
    mask = (torch.arange(T)[None, :] < torch.tensor(params["lengths"])[:, None]).to(f64)
    seen = []

    def eval_fn(x):
        seen.append(torch.Tensor.detach(x - embeddings))
        return (torch.tanh(x @ w1) * mask[:, :, None]).sum(dim=1) @ w2  # (B, C)

    clean = eval_fn(embeddings)
    seen.clear()
    saved = getattr(smart, "symmetric_kl", None)
    kl, note = trusted.stand_in("symmetric_kl", saved)
    smart.symmetric_kl = kl
    try:
        loss = smart.smart_loss(eval_fn, embeddings, clean, noise=noise,
                                num_steps=params["num_steps"], step_size=params["step_size"],
                                epsilon=params["epsilon"])
    finally:
        smart.symmetric_kl = saved
    loss.backward()
    grads = {"d_embeddings": embeddings.grad, "d_w1": w1.grad, "d_w2": w2.grad}
    result = {"loss": to_numpy(loss, "smart_loss"),
              "noises": to_numpy(torch.stack(seen) if seen else torch.zeros(0),
                                 "the noise of each call to eval_fn"),
              **{key: to_numpy(grad if grad is not None else torch.zeros(0), key)
                 for key, grad in grads.items()}}
    return {**result, NOTES: lines_array([note])} if note else result


PRODUCERS = {"symmetric_kl": symmetric_kl, "smart_loss": smart_loss}

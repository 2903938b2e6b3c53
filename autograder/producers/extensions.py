"""Producers for the LoRA (handout 7.2) and DPO (handout 7.3) parts.

LoRA: a `LoRALinear` of the submission around a seeded `nn.Linear`, its adapters
overwritten with seeded values (except in the fresh-layer case); `merge` runs with the
trusted `delta_weight`, so that one bug costs only the cases of its rule (`trusted.solution`:
the student's own in their copy of the handout).
DPO: `sequence_logprobs` runs on the trusted stand-in model `trusted.stub_gpt` (sized by
the case's `GPT2Config`), so that a bug in the model part costs nothing here; `dpo_loss`
runs with the trusted losses in place of the submission's `DPO_LOSSES`.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

from autograder.producers import NOTES, lines_array, to_numpy, trusted
from autograder.producers.model import case_config

LOSS_TYPES = ("sigmoid", "ipo", "hinge")  # dpo.DPO_LOSSES' keys, each "<type>_loss"


def _randn(seed: int, *shape: int):
    import torch

    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _lora_layer(params: dict[str, Any], seed_adapters: bool = True):
    """The submission's LoRALinear(r, alpha, dropout, rslora) around a seeded
    nn.Linear(in, out); with `seed_adapters`, lora_A and lora_B seeded too (both nonzero)."""
    import torch

    from modules.lora import LoRALinear

    seed = params["seed"]
    base = torch.nn.Linear(params["in"], params["out"])
    with torch.no_grad():
        base.weight.copy_(_randn(seed, params["out"], params["in"]) * 0.5)
        base.bias.copy_(_randn(seed + 1, params["out"]) * 0.5)
    layer = LoRALinear(base, params["r"], params["alpha"], params.get("dropout", 0.0),
                       params.get("rslora", False))
    if seed_adapters:
        with torch.no_grad():
            layer.lora_A.copy_(_randn(seed + 2, params["r"], params["in"]))
            layer.lora_B.copy_(_randn(seed + 3, params["out"], params["r"]))
    return layer


def lora_forward(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`LoRALinear.forward` of seeded x [*shape, in]: in eval mode with the gradients of
    lora_A and lora_B, or (params["train"]) in training mode after torch.manual_seed(seed)."""
    import torch

    layer = _lora_layer(params, seed_adapters=not params.get("fresh", False))
    x = _randn(params["seed"] + 4, *params["shape"], params["in"])
    if params.get("train"):
        layer.train()
        torch.manual_seed(params["seed"])
        with torch.no_grad():
            return {"train": to_numpy(layer(x), "LoRALinear output in training mode")}
    layer.eval()
    out = layer(x)
    if params.get("fresh", False):
        return {"out": to_numpy(out, "output of a fresh LoRALinear")}
    (out * _randn(params["seed"] + 5, *out.shape)).sum().backward()
    grads = {name: getattr(layer, name).grad for name in ("lora_A", "lora_B")}
    return {"out": to_numpy(out, "LoRALinear output"),
            **{f"d_{name}": to_numpy(grad if grad is not None else torch.zeros(0), f"d {name}")
               for name, grad in grads.items()}}


def lora_delta_weight(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`LoRALinear.delta_weight()` of seeded adapters, [out, in]."""
    layer = _lora_layer(params)
    return {"delta": to_numpy(layer.delta_weight(), "delta_weight")}


def lora_merge(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`LoRALinear.merge()` with the trusted delta_weight: base.weight afterwards, and
    [merged flag, base.weight still the same tensor] as 0/1."""
    import torch

    layer = _lora_layer(params)
    delta, note = trusted.stand_in("lora_delta_weight", type(layer).delta_weight)
    layer.delta_weight = types.MethodType(delta, layer)
    weight = layer.base.weight
    layer.merge()
    after = layer.base.weight  # a Parameter unless the submission replaced it
    result = {"weight": to_numpy(after.detach() if type(after) is torch.nn.Parameter else after,
                                 "base.weight after merge"),
              "flags": np.array([int(layer.merged is True), int(layer.base.weight is weight)],
                                dtype=np.int64)}
    return {**result, NOTES: lines_array([note])} if note else result


def sequence_logprobs(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`sequence_logprobs` on the trusted stand-in model: rows of seeded ids with
    params["prompts"] prompt and params["completions"] completion tokens, right-padded."""
    import torch

    from dpo import sequence_logprobs as student

    config = case_config(params)
    model = trusted.stub_gpt(config.vocab_size, config.hidden_size, params["seed"])
    prompts, completions = params["prompts"], params["completions"]
    T = max(p + c for p, c in zip(prompts, completions, strict=True))
    generator = torch.Generator().manual_seed(params["seed"] + 1)
    ids = torch.randint(0, config.vocab_size, (len(prompts), T), generator=generator)
    attention = torch.zeros(len(prompts), T, dtype=torch.long)
    completion = torch.zeros(len(prompts), T, dtype=torch.long)
    for row, (p, c) in enumerate(zip(prompts, completions, strict=True)):
        attention[row, :p + c] = 1
        completion[row, p:p + c] = 1
        ids[row, p + c:] = config.pad_token_id
    out = student(model, ids, attention, completion, average=params.get("average", False))
    out.sum().backward()
    return {"logps": to_numpy(out, "sequence_logprobs"),
            "d_embedding": to_numpy(model.embedding.grad, "gradient of the model's weights")}


def dpo_pair_loss(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`sigmoid_loss`, `ipo_loss` or `hinge_loss` (params["loss"]) of seeded margins [B]
    (scaled by params["scale"]), and the margins' gradient."""
    import dpo

    logits = (_randn(params["seed"], params["B"]) * params["scale"]).requires_grad_(True)
    function = {"sigmoid": dpo.sigmoid_loss, "ipo": dpo.ipo_loss, "hinge": dpo.hinge_loss}
    losses = function[params["loss"]](logits, params["beta"], params.get("label_smoothing", 0.0))
    losses.sum().backward()
    return {"losses": to_numpy(losses, "losses"), "d_logits": to_numpy(logits.grad, "d logits")}


def dpo_loss(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`dpo_loss` of four seeded log-probability vectors [B], with the trusted losses:
    losses, rewards, the policy log-probabilities' gradients, and [1] when both rewards
    are detached (else [0])."""
    import dpo

    # The trusted losses stand in for the submission's, for this call only (the other
    # cases of the group run in the same process).
    stand_ins = {kind: trusted.stand_in(f"{kind}_loss", getattr(dpo, f"{kind}_loss", None))
                 for kind in LOSS_TYPES}
    losses = {kind: function for kind, (function, _) in stand_ins.items()}
    notes = [note for _, note in stand_ins.values() if note]
    names = ["DPO_LOSSES", *(f"{kind}_loss" for kind in LOSS_TYPES)]
    saved = {name: getattr(dpo, name, None) for name in names}
    dpo.DPO_LOSSES = dict(losses)
    for kind, loss in losses.items():
        setattr(dpo, f"{kind}_loss", loss)
    B, seed = params["B"], params["seed"]
    policy = [(_randn(seed + i, B) * 2 - 8).requires_grad_(True) for i in (0, 1)]
    reference = [_randn(seed + i, B) * 2 - 8 for i in (2, 3)]
    try:
        losses, chosen, rejected = dpo.dpo_loss(
            *policy, *reference, beta=params["beta"],
            label_smoothing=params.get("label_smoothing", 0.0), loss_type=params["loss_type"],
            reference_free=params.get("reference_free", False))
    finally:
        for name, value in saved.items():
            setattr(dpo, name, value)
    losses.sum().backward()
    return {"losses": to_numpy(losses, "losses"),
            "chosen_rewards": to_numpy(chosen, "chosen rewards"),
            "rejected_rewards": to_numpy(rejected, "rejected rewards"),
            "d_policy_chosen": to_numpy(policy[0].grad, "d policy chosen"),
            "d_policy_rejected": to_numpy(policy[1].grad, "d policy rejected"),
            "detached": np.array([int(not chosen.requires_grad and not rejected.requires_grad)],
                                 dtype=np.int64),
            **({NOTES: lines_array(notes)} if notes else {})}


PRODUCERS = {"lora_forward": lora_forward, "lora_delta_weight": lora_delta_weight,
             "lora_merge": lora_merge, "sequence_logprobs": sequence_logprobs,
             "dpo_pair_loss": dpo_pair_loss, "dpo_loss": dpo_loss}

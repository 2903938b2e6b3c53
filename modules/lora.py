"""LoRA: low-rank adapters on frozen linear layers (handout 7.2).

A frozen projection W [out, in] gets a trainable update of rank r,

    y = x W^T + b + (dropout(x) A^T B^T) * scaling,   A [r, in], B [out, r],

with scaling = alpha / r (or alpha / sqrt(r), rank-stabilised LoRA).  B starts at zero, so
a fresh adapter changes nothing; only A and B (and a task head) are trained, so the
optimizer keeps state for a fraction of a percent of the weights.  `merge()` folds the
update into W for generation and export.  Names and layout follow peft's
`tuners/lora/layer.py` (`lora_A` [r, in], `lora_B` [out, r]), so adapters move between the
two: `tests/test_lora.py` checks ours against peft in float64.

    names = apply_lora(model, targets=("query", "value"), r=8, alpha=16)
    ...train...
    torch.save(lora_state_dict(model), "adapters.pt")
    merge_lora(model)  # plain nn.Linear layers again, adapters folded in
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from models.base_gpt import gpt_backbones

ADAPTER_NAMES = ("lora_A", "lora_B")  # the parameter names `lora_state_dict` keeps


class LoRALinear(nn.Module):
    """A frozen `nn.Linear` plus a trainable rank-r update (handout 7.2).

    Attributes:
        base: the wrapped `nn.Linear` (weight [out, in]); its parameters are frozen.
        lora_A: [r, in], Kaiming-uniform with a = sqrt(5) (as `nn.Linear` and peft).
        lora_B: [out, r], zeros.
        scaling: alpha / r, or alpha / sqrt(r) when `rslora`.
        lora_dropout: dropout on the adapter branch's input (`nn.Identity` at p = 0).
        merged: True while the update is folded into `base.weight`.
        disabled: True inside `disable_adapters` (the adapter is then skipped).
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0,
                 rslora: bool = False):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        if not isinstance(r, int) or r < 1:
            raise ValueError(f"LoRA rank r must be an integer >= 1, got {r!r}")
        if not alpha > 0:
            raise ValueError(f"LoRA alpha must be > 0, got {alpha!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {dropout!r}")
        self.base = base
        for param in base.parameters():
            param.requires_grad_(False)
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, **factory))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, **factory))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scaling = alpha / (math.sqrt(r) if rslora else r)
        # As peft: no dropout module at p = 0 (nn.Dropout(0) still copies its input in training).
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False
        self.disabled = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[..., in] -> [..., out] (handout 7.2).

        While merged or disabled, the adapter is skipped: the result is `base(x)`.
        Otherwise the result is

            base(x) + (lora_dropout(x) @ lora_A^T @ lora_B^T) * scaling

        Dropout is on the adapter branch's input only; `base(x)` sees x unchanged.  (Scaling
        the [..., r] intermediate instead of the [..., out] update is the same product and
        cheaper.)
        Worked example (in = out = 2, r = 1, alpha = 2, so scaling = 2): base weight I,
        bias 0, lora_A = [[1, 1]], lora_B = [[1], [0]], x = [1, 2] -> [1, 2] + [3, 0] * 2
        = [7, 2].
        """
        ### BEGIN SOLUTION
        result = self.base(x)
        if self.merged or self.disabled:
            return result
        down = F.linear(self.lora_dropout(x), self.lora_A) * self.scaling  # (..., r)
        return result + F.linear(down, self.lora_B)  # (..., out)
        ### END SOLUTION

    def delta_weight(self) -> torch.Tensor:
        """The update the adapter adds to `base.weight` (handout 7.2).

        Returns (lora_B @ lora_A) * scaling, [out, in] like `base.weight` (not its transpose).
        Example: lora_A = [[1, 1]], lora_B = [[1], [0]], scaling 2 -> [[2, 2], [0, 0]].
        """
        ### BEGIN SOLUTION
        return (self.lora_B @ self.lora_A) * self.scaling  # (out, in)
        ### END SOLUTION

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into the frozen weight (handout 7.2).

        base.weight <- base.weight + delta_weight(), in place (`base.weight` keeps its memory
        layout); then `merged` is True, so `forward` returns `base(x)`, the same numbers up
        to rounding.  Merging twice is an error.
        """
        ### BEGIN SOLUTION
        if self.merged:
            raise RuntimeError("LoRALinear.merge: the adapter is already merged")
        self.base.weight.add_(self.delta_weight().to(self.base.weight.dtype))
        self.merged = True
        ### END SOLUTION

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update out of `base.weight` again (the inverse of `merge`)."""
        if not self.merged:
            raise RuntimeError("LoRALinear.unmerge: the adapter is not merged")
        self.base.weight.sub_(self.delta_weight().to(self.base.weight.dtype))
        self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.lora_A.shape[0]}, scaling={self.scaling:g}, merged={self.merged}"


def apply_lora(model: nn.Module, targets: Sequence[str] = ("query", "value"), r: int = 8,
               alpha: float = 16, dropout: float = 0.0, rslora: bool = False) -> list[str]:
    """Wrap every `nn.Linear` whose qualified name ends with a target in a `LoRALinear`.

    A name matches a target when it equals it or ends with "." + target (so "value" matches
    "gpt_layers.0.self_attention.value" but not "gpt_layers.0.self_attention.keyvalue").
    Every parameter of the GPT backbone (each `GPTPreTrainedModel` inside `model`, or
    `model` itself when it holds none) is frozen; parameters outside it, a task head such
    as the sentiment classifier's `classifier`, keep their `requires_grad`.
    Returns the qualified names of the wrapped layers, in module order.  Raises ValueError
    naming the targets when none matches.
    """
    targets = tuple(targets)
    if not targets:
        raise ValueError("apply_lora: no target names given")
    backbones = gpt_backbones(model)
    for backbone in backbones:
        for param in backbone.parameters():
            param.requires_grad_(False)
    names = [name for name, module in model.named_modules()
             if isinstance(module, nn.Linear) and any(name == t or name.endswith("." + t)
                                                      for t in targets)]
    if not names:
        linears = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                          if isinstance(m, nn.Linear)})
        raise ValueError(f"apply_lora: no nn.Linear named like {list(targets)}; "
                         f"the model's linear layers are named {linears}")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(getattr(parent, child), r, alpha, dropout, rslora))
    return names


def lora_modules(model: nn.Module) -> list[tuple[str, LoRALinear]]:
    """(qualified name, module) for every `LoRALinear` in `model`."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, LoRALinear)]


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapters only: {"<layer>.lora_A": [r, in], "<layer>.lora_B": [out, r], ...}."""
    return {name: tensor for name, tensor in model.state_dict().items()
            if name.rsplit(".", 1)[-1] in ADAPTER_NAMES}


def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter that trains (with LoRA: the adapters and a task head), detached."""
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


def load_trainable_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load what `trainable_state_dict` saved; every trainable parameter must be in it.

    Raises ValueError naming the keys that are missing or that the model lacks.
    """
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    missing, unexpected = sorted(trainable - set(state)), sorted(set(state) - trainable)
    if missing or unexpected:
        raise ValueError(f"checkpoint does not match the trainable parameters: missing "
                         f"{missing}, unexpected {unexpected}")
    model.load_state_dict(state, strict=False)


def merge_lora(model: nn.Module) -> list[str]:
    """Merge every adapter and put the plain `nn.Linear` back in its place.

    Afterwards `model` has its original module names and state-dict keys (ready to export
    or to generate without the adapter branch); returns the names of the merged layers.
    """
    merged = lora_modules(model)
    for name, module in merged:
        module.merge()
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, module.base)
    return [name for name, _ in merged]


@contextlib.contextmanager
def disable_adapters(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every `LoRALinear` of `model` acts as its frozen base layer.

    DPO's reference model is the policy with its adapters off: no second copy in memory.
    Raises RuntimeError when an adapter is merged (its update is then inside the weight).
    """
    modules = [m for _, m in lora_modules(model)]
    if any(m.merged for m in modules):
        raise RuntimeError("disable_adapters: an adapter is merged; unmerge it first")
    for m in modules:
        m.disabled = True
    try:
        yield model
    finally:
        for m in modules:
            m.disabled = False

"""The feed-forward block's activation (`config.mlp`, read only here).

- "gelu_tanh": GPT-2's m = gelu_tanh(interm_dense(x)), then out_dense(m);
- "gelu": the same with the exact GELU, x * Phi(x) (nanoGPT's `nn.GELU()`; "gelu" in
  Hugging Face);
- "swiglu": m = silu(gate_dense(x)) * interm_dense(x), then out_dense(m) (Shazeer, "GLU
  variants improve Transformer", 2020; LLaMA's MLP with gate_proj = gate_dense,
  up_proj = interm_dense, down_proj = out_dense).

`mlp_modules(config)` gives the modules a `GPT2Layer` sets on itself, so that its
forward, `interm_af(interm_dense(x))`, is the same for all three: for SwiGLU `interm_dense` is the
value projection that also applies the gate, and `interm_af` is the identity.
The width (`intermediate_size`) is set by config.MLP_WIDTHS.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from config import GPT2Config
from modules.common import linear


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GELU with the tanh approximation, the activation of GPT-2 ("gelu_new" in Hugging Face)."""
    return F.gelu(x, approximate="tanh")


def gelu(x: torch.Tensor) -> torch.Tensor:
    """The exact GELU, x * Phi(x) with Phi the standard normal CDF (through erf)."""
    return F.gelu(x)


def identity(x: torch.Tensor) -> torch.Tensor:
    return x


def swiglu(gate: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """SwiGLU's gating (handout 9.3).

    Args:
        gate: [..., I], gate_dense(x), the branch that goes through the activation.
        value: [..., I], interm_dense(x), the branch that is only scaled.
    Returns:
        [..., I]: silu(gate) * value, where silu(z) = z * sigmoid(z).

    Example: gate [0, 2], value [3, 1] give [0 * 0.5 * 3, 2 * sigmoid(2) * 1]
    = [0, 1.7616].
    """
    ### BEGIN SOLUTION
    return F.silu(gate) * value
    ### END SOLUTION


class GatedDense(nn.Linear):
    """`interm_dense` of a SwiGLU layer: the value projection [I, D] (its own weight and
    bias), whose output is gated by the layer's `gate_dense`:  x -> swiglu(gate_dense(x),
    x W^T + b).  The gate is held by reference (`gated_by`); it is a parameter of the layer."""

    def gated_by(self, gate: nn.Linear) -> GatedDense:
        self.gate = (gate,)  # a tuple, so the gate stays registered only as the layer's gate_dense
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return swiglu(self.gate[0](x), super().forward(x))  # (B, T, I)


def _gelu_tanh_mlp(config: GPT2Config) -> dict[str, nn.Module | Callable]:
    return {"interm_dense": linear(config, config.hidden_size, config.intermediate_size),
            "interm_af": gelu_tanh}


def _gelu_mlp(config: GPT2Config) -> dict[str, nn.Module | Callable]:
    return {"interm_dense": linear(config, config.hidden_size, config.intermediate_size),
            "interm_af": gelu}


def _swiglu_mlp(config: GPT2Config) -> dict[str, nn.Module | Callable]:
    gate = linear(config, config.hidden_size, config.intermediate_size)
    value = linear(config, config.hidden_size, config.intermediate_size, kind=GatedDense)
    return {"gate_dense": gate, "interm_dense": value.gated_by(gate), "interm_af": identity}


# config.mlp -> the modules of the feed-forward block up to out_dense.
MLPS: dict[str, Callable[[GPT2Config], dict[str, nn.Module | Callable]]] = {
    "gelu_tanh": _gelu_tanh_mlp,
    "gelu": _gelu_mlp,
    "swiglu": _swiglu_mlp,
}


def mlp_modules(config: GPT2Config) -> dict[str, nn.Module | Callable]:
    """The feed-forward modules of `config.mlp`: name -> what the layer sets under it."""
    return MLPS[config.mlp](config)

"""The per-forward context a layer's attention reads besides its input.

The model builds one `ForwardContext` per forward (`modules.positions.PositionEncoding.
context`): the KV cache, the rotary tables of the new positions, the ALiBi bias and the keys
a sliding window leaves visible.  `ForwardContext.layer(i)` is layer i's `LayerContext`,
which `GPT2Layer.forward` passes through to `CausalSelfAttention.forward` as `context`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from modules.attention import KVCache, LayerCache, SinkKVCache


@dataclass
class LayerContext:
    """What one layer's attention reads besides its input, for one forward.

    cache: the layer's slice of the KV cache (`KVCache.layer(i)` or `SinkKVCache.layer(i)`
    of `modules/attention.py`), or None.  rotary: (cos, sin) [B|1, 1, T, r/2] at the new
    positions and the layout function, or None.  score_bias: [B|1, H, T_q, T_k], added
    to the padding mask, or None.  visible: [B|1, 1, T_q, T_k] bool, the keys a sliding
    window leaves visible (`modules.attention.window_visibility`), or None for all.
    """

    cache: LayerCache | None = None
    rotary: tuple[torch.Tensor, torch.Tensor, Callable[..., torch.Tensor]] | None = None
    score_bias: torch.Tensor | None = None
    visible: torch.Tensor | None = None

    def rotate(self, x: torch.Tensor) -> torch.Tensor:
        """Queries or keys [B, H, T, d] turned to their positions (unchanged without rotary)."""
        if self.rotary is None:
            return x
        cos, sin, rotate = self.rotary
        return rotate(x, cos, sin)

    def mask(self, attention_mask: torch.Tensor) -> torch.Tensor:
        """The additive mask attention takes: padding [B, 1, 1, T_k] plus any score bias,
        and the dtype's minimum at the keys outside a sliding window."""
        mask = attention_mask if self.score_bias is None else attention_mask + self.score_bias
        if self.visible is None:
            return mask
        return torch.where(self.visible, mask, torch.finfo(mask.dtype).min)


class ForwardContext:
    """The per-forward context of the whole model: `layer(i)` is layer i's `LayerContext`."""

    def __init__(self, cache: KVCache | SinkKVCache | None, rotary: tuple | None,
                 score_bias: torch.Tensor | None, visible: torch.Tensor | None = None):
        self.cache, self.rotary, self.score_bias = cache, rotary, score_bias
        self.visible = visible

    def layer(self, index: int) -> LayerContext:
        cache = None if self.cache is None else self.cache.layer(index)
        return LayerContext(cache, self.rotary, self.score_bias, self.visible)

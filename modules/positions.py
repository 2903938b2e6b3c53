"""How positions enter the model (`config.position_encoding`, read only here).

- "learned": GPT-2's table `pos_embedding` [T_max, D], added to the token embeddings;
- "alibi": no table; each head h adds slope_h * (j - i) to the score of query i on key j
  (Press et al., "Train short, test long", 2022);
- "rope": no table; queries and keys are turned by an angle proportional to their position
  (Su et al., RoFormer), so q_i . k_j depends on i - j only;
- "none": no position information at all (causal attention still orders the tokens).

`PositionEncoding(config).context(...)` builds, once per forward, the `ForwardContext`
(`modules/context.py`) that every layer's attention reads: its KV-cache slice, the rotary tables of the new positions,
the ALiBi bias and the keys a sliding window leaves visible.  Positions are those of real
tokens: 0 .. T-1 without a cache, and cumsum(attention_mask) - 1 with one, so left-padded
prompts and cached steps agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from config import GPT2Config
from modules.context import ForwardContext, LayerContext


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """ALiBi's head slopes (handout 9.1).  Returns [H] float32.

    For H a power of two the slopes are the geometric sequence m_h = 2^(-8 h / H),
    h = 1 .. H.  Otherwise, with P the largest power of two below H, take the P slopes of
    P heads, then the odd-numbered ones (1st, 3rd, 5th, ...) of the 2P slopes of 2P heads
    until there are H in all.

    Example: H = 8 gives 1/2, 1/4, ..., 1/256; H = 6 gives the four slopes of 4 heads,
    2^-2, 2^-4, 2^-6, 2^-8, then slopes 1 and 3 of 8 heads, 2^-1 and 2^-3.
    """
    ### BEGIN SOLUTION
    def geometric(n: int) -> list[float]:
        return [2.0 ** (-8.0 * h / n) for h in range(1, n + 1)]

    power = 2 ** math.floor(math.log2(num_heads))
    slopes = geometric(power) + geometric(2 * power)[0::2][: num_heads - power]
    return torch.tensor(slopes, dtype=torch.float32)
    ### END SOLUTION


def alibi_bias(slopes: torch.Tensor, query_positions: torch.Tensor,
               key_positions: torch.Tensor) -> torch.Tensor:
    """ALiBi's additive score bias (handout 9.1).

    Args:
        slopes: [H], from `alibi_slopes`.
        query_positions: [B, T_q] (or [1, T_q]), the position of each query.
        key_positions: [B, T_k] (or [1, T_k]), the position of each key.
    Returns:
        [B, H, T_q, T_k]: bias[b, h, i, j] = slopes[h] * (key_positions[b, j] -
        query_positions[b, i]), added to the scores before the softmax (so a key k steps
        back costs k * slope; future keys get a positive bias but are masked anyway).

    Example: slopes [0.5], query positions [[0, 1, 2]], key positions [[0, 1, 2]] give
    [[[[0, 0.5, 1], [-0.5, 0, 0.5], [-1, -0.5, 0]]]].
    """
    ### BEGIN SOLUTION
    distance = key_positions[:, None, None, :] - query_positions[:, None, :, None]  # (B, 1, T_q, T_k)
    return slopes[None, :, None, None] * distance  # (B, H, T_q, T_k)
    ### END SOLUTION


def rotary_tables(positions: torch.Tensor, rotary_dims: int,
                  theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosines and sines of the rotary angles (handout 9.2).

    Args:
        positions: [B, T] (or [1, T]) integer positions.
        rotary_dims: r, the number of channels turned (even); they form r/2 pairs.
        theta: the base (10,000).
    Returns:
        (cos, sin), each [B, 1, T, r/2] float32: pair k at position p turns by the angle
        p * theta^(-2k / r), k = 0 .. r/2 - 1 (the 1 broadcasts over heads).

    Example: r = 4, theta = 100, positions [[0, 1]]: frequencies 1 and 0.1, so
    cos = [[[[1, 1], [cos 1, cos 0.1]]]] and sin = [[[[0, 0], [sin 1, sin 0.1]]]].
    """
    ### BEGIN SOLUTION
    exponents = torch.arange(0, rotary_dims, 2, dtype=torch.int64).float() / rotary_dims
    inverse_frequency = 1.0 / theta ** exponents.to(positions.device)  # (r/2,)
    angles = positions.float()[:, None, :, None] * inverse_frequency  # (B, 1, T, r/2)
    return angles.cos(), angles.sin()
    ### END SOLUTION


def rotate_half(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding, half-split layout of GPT-NeoX and LLaMA (handout 9.2).

    Args:
        x: [B, H, T, d] queries or keys.
        cos, sin: [B, 1, T, r/2] from `rotary_tables`, r <= d.
    Returns:
        [B, H, T, d]: channel k and channel k + r/2 form pair k (k < r/2); with a = x[k],
        b = x[k + r/2], the pair becomes (a cos - b sin, b cos + a sin) at angle k.
        Channels r .. d-1 pass through unchanged.

    Example: d = r = 2, x = [1, 0] at angle pi/2 gives [0, 1].
    """
    ### BEGIN SOLUTION
    half = cos.shape[-1]
    a, b, rest = x[..., :half], x[..., half:2 * half], x[..., 2 * half:]  # (B, H, T, r/2) x 2
    return torch.cat([a * cos - b * sin, b * cos + a * sin, rest], dim=-1)  # (B, H, T, d)
    ### END SOLUTION


def rotate_interleaved(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding, interleaved layout of GPT-J (handout 9.2).

    The same as `rotate_half` except that pair k is channels (2k, 2k + 1): with a = x[2k],
    b = x[2k + 1], the pair becomes (a cos - b sin, b cos + a sin) at angle k; channels
    r .. d-1 pass through.  Shapes as in `rotate_half`.

    Example: d = 4, r = 2, x = [1, 0, 5, 6] at angle pi/2 gives [0, 1, 5, 6].
    """
    ### BEGIN SOLUTION
    half = cos.shape[-1]
    a, b, rest = x[..., 0:2 * half:2], x[..., 1:2 * half:2], x[..., 2 * half:]  # (B, H, T, r/2)
    pairs = torch.stack([a * cos - b * sin, b * cos + a * sin], dim=-1)  # (B, H, T, r/2, 2)
    return torch.cat([pairs.flatten(-2), rest], dim=-1)  # (B, H, T, d)
    ### END SOLUTION


# config.rope_layout -> how channels pair up.
ROPE_LAYOUTS: dict[str, Callable[..., torch.Tensor]] = {
    "half": rotate_half,
    "interleaved": rotate_interleaved,
}


class NoPositionEmbedding(nn.Module):
    """`pos_embedding` of the encodings without a table: adds nothing, has no parameters."""

    def forward(self, position_ids: torch.Tensor) -> torch.Tensor:
        return torch.zeros((), device=position_ids.device)


def _no_positions(config, query_positions, key_positions, dtype):
    return None, None


def _alibi(config, query_positions, key_positions, dtype):
    slopes = alibi_slopes(config.num_attention_heads).to(query_positions.device)
    return None, alibi_bias(slopes, query_positions.float(), key_positions.float()).to(dtype)


def _rope(config, query_positions, key_positions, dtype):
    cos, sin = rotary_tables(query_positions, config.rotary_dims, config.rope_theta)
    return (cos.to(dtype), sin.to(dtype), ROPE_LAYOUTS[config.rope_layout]), None


# config.position_encoding -> (has a learned table, builder of (rotary, score_bias)).
POSITION_ENCODINGS: dict[str, tuple[bool, Callable]] = {
    "learned": (True, _no_positions),
    "alibi": (False, _alibi),
    "rope": (False, _rope),
    "none": (False, _no_positions),
}


class PositionEncoding:
    """The position encoding of a config: the embedding table and the per-forward context."""

    def __init__(self, config: GPT2Config):
        self.config = config
        self.has_table, self.build = POSITION_ENCODINGS[config.position_encoding]

    @property
    def max_length(self) -> int | None:
        """The longest sequence the encoding takes: T_max for a learned table (it has no row
        beyond), None for the others, which compute any position."""
        return self.config.max_position_embeddings if self.has_table else None

    def embedding(self) -> nn.Module:
        """`GPT2Model.pos_embedding`: nn.Embedding(T_max, D) for "learned", else a zero."""
        if self.has_table:
            return nn.Embedding(self.config.max_position_embeddings, self.config.hidden_size)
        return NoPositionEmbedding()

    def context(self, query_positions: torch.Tensor, key_positions: torch.Tensor,
                dtype: torch.dtype, cache: object | None = None,
                visible: torch.Tensor | None = None) -> ForwardContext:
        """Positions [B|1, T_q] of the new tokens and [B|1, T_k] of all keys (and the
        window's visible keys, see `LayerContext`) -> the context."""
        rotary, score_bias = self.build(self.config, query_positions, key_positions, dtype)
        return ForwardContext(cache, rotary, score_bias, visible)

    def default_layer_context(self, length: int, device: torch.device, dtype: torch.dtype,
                              visible: torch.Tensor | None = None) -> LayerContext:
        """A layer run on its own: positions 0 .. length-1, no cache."""
        positions = torch.arange(length, device=device)[None, :]  # (1, T)
        return self.context(positions, positions, dtype, visible=visible).layer(0)

"""How attention scores become outputs (`config.attention_variant`, read only here).

The variants of the systematic-outliers study, each one function of the same inputs:
key, value [B, H, T_k, d] (already rotated and cached), query [B, H, T_q, d], the additive
mask (padding plus any ALiBi bias, broadcastable to [B, H, T_q, T_k]) and the attention's
normalised input x [B, T_q, D]; each returns [B, T_q, D], heads merged (head h in columns
h*d .. (h+1)*d - 1).  `module.core` is the softmax attention of `config.attention_impl`
(the handout's eager `attention` or the fused `sdpa_attention`):

- softmax:    y = softmax(S) V, the handout's attention (S = Q K^T / sqrt(d), masked).
- vbias:      y = softmax(S) V + v', one v' per head (`v_bias` [H, d], zero init).
- cabias:     y_i = sum_j softmax_j(S_ij) v_j + p_i v', where p_i is the weight an extra
              key k' would get in a softmax over {k', k_1 .. k_i}: p_i = sigmoid(q_i.k'/sqrt(d)
              - logsumexp_j S_ij).  (`k_bias`, `v_bias` [H, d], normal(0, 0.02).)
- attn_bias:  k' and v' prepended to every query's keys and values (Sun et al., "Massive
              activations", explicit attention bias): y_i = sum over {k', k_1..k_i}.
- ca_softmax: y = 2 sigmoid(x W^T + b) * softmax(S) V, one scale per head and position
              (`context_scale` = Linear(D, H), GPT-2's init).
- sigmoid:    y_i = sum_{j <= i} sigmoid(S_ij - log n) v_j, not normalised, n fixed at
              max_position_embeddings.  (The study's code used the current length for n,
              which changes earlier outputs when tokens are appended and breaks the KV
              cache; a fixed n keeps the model causal.)

k' and v' carry no position: they are neither rotated nor given an ALiBi bias.

No variant recomputes what the handout's graded attention computes (the masked, scaled
scores, the head merge): every one goes through `module.core`, so `attention_impl="sdpa"`
uses scaled_dot_product_attention, and a release that grades the attention but ships these
variants solved runs them on the student's own `attention`.  cabias reads p_i as the weight `core` gives k' (value = an indicator of k').
sigmoid reads each weight as a two-way softmax, sigmoid(S_ij - log n) = e^S_ij / (e^S_ij +
n): `core` over the keys plus one zero key whose mask entry is log n gives probabilities
P_ij = e^S_ij / (n + Z_i) and P_i0 = n / (n + Z_i), so the weight is P_ij / (P_ij + P_i0);
the probabilities come out d columns of an identity value at a time (ceil((T_k + 1) / d)
calls of `core`, the stated cost of a formula without a softmax; P_i0 underflows, and the
weights with it, only once Z_i exceeds n by about e^87 in float32).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from config import GPT2Config
from modules.common import linear


@contextmanager
def _without_dropout(module: nn.Module) -> Iterator[None]:
    """`module.dropout` at p = 0 inside the block (the extractions below must be exact)."""
    p, module.dropout.p = module.dropout.p, 0.0
    try:
        yield
    finally:
        module.dropout.p = p


def _merge_heads(module, out: torch.Tensor) -> torch.Tensor:
    """[B, H, T, d] -> [B, T, H * d] through `module.core`: a mask that is 0 on the
    diagonal and the dtype's minimum elsewhere makes every softmax row exactly one-hot."""
    B, H, T, d = out.shape
    low = torch.finfo(out.dtype).min
    diagonal = torch.full((T, T), low, dtype=out.dtype, device=out.device).fill_diagonal_(0.0)
    zeros = torch.zeros_like(out)
    with _without_dropout(module):
        return module.core(zeros, zeros, out, diagonal)  # (B, T, D)


def _probabilities(module, key, query, mask) -> torch.Tensor:
    """The probabilities `module.core` gives each key, without dropout: [B, H, T_q, T_k].

    The value is d columns of the T_k x T_k identity at a time, so each call returns d
    columns of the probabilities (heads merged: head h in columns h*d .. (h+1)*d - 1).
    """
    B, H, T_k, d = key.shape
    T_q = query.shape[2]
    columns = []
    with _without_dropout(module):
        for start in range(0, T_k, d):
            block = torch.zeros(B, H, T_k, d, dtype=query.dtype, device=query.device)
            width = min(d, T_k - start)
            block[:, :, start:start + width, :width] = torch.eye(width, dtype=query.dtype,
                                                                 device=query.device)
            merged = module.core(key, query, block, mask)  # (B, T_q, H * d)
            columns.append(merged.view(B, T_q, H, d).transpose(1, 2)[..., :width])
    return torch.cat(columns, dim=-1)  # (B, H, T_q, T_k)


def softmax_attention(module, key, query, value, mask, x):
    return module.core(key, query, value, mask)


def vbias_attention(module, key, query, value, mask, x):
    return module.core(key, query, value, mask) + module.v_bias.flatten()  # (B, T_q, D)


def _prepend_bias_key(module, key, value, mask):
    """Keys and values with k', v' in front ([B, H, T_k + 1, d]) and the mask with a 0 there."""
    B, H, _, d = key.shape
    key = torch.cat([module.k_bias[None, :, None, :].expand(B, H, 1, d), key], dim=2)
    value = torch.cat([module.v_bias[None, :, None, :].expand(B, H, 1, d), value], dim=2)
    return key, value, F.pad(mask, (1, 0))  # (..., T_k + 1)


def attn_bias_attention(module, key, query, value, mask, x):
    # The causal rule of `core` (key j allowed iff j <= i + T_k - T_q) lets every query see
    # the prepended key, since T_k grew by one.
    key, value, mask = _prepend_bias_key(module, key, value, mask)
    return module.core(key, query, value, mask)


def cabias_attention(module, key, query, value, mask, x):
    out = module.core(key, query, value, mask)  # (B, T_q, D): softmax(S) V
    B, H, _, d = key.shape
    bias_key, _, bias_mask = _prepend_bias_key(module, key, value, mask)  # (B, H, T_k + 1, d)
    indicator = torch.zeros_like(bias_key)
    indicator[:, :, 0, 0] = 1.0  # the value of k' is e_0, the other values 0
    weight = module.core(bias_key, query, indicator, bias_mask)  # (B, T_q, D)
    weight = weight.view(B, -1, H, d)[..., :1]  # (B, T_q, H, 1): p_i, dropped like a probability
    out = out.view(B, -1, H, d) + weight * module.v_bias  # (B, T_q, H, d)
    return out.reshape(B, -1, H * d)  # (B, T_q, D)


def ca_softmax_attention(module, key, query, value, mask, x):
    out = module.core(key, query, value, mask)  # (B, T_q, D)
    B, T_q, D = out.shape
    scale = 2.0 * torch.sigmoid(module.context_scale(x))  # (B, T_q, H)
    out = out.view(B, T_q, scale.shape[-1], -1) * scale[..., None]  # (B, T_q, H, d)
    return out.reshape(B, T_q, D)


def sigmoid_attention(module, key, query, value, mask, x):
    zero_key = F.pad(key, (0, 0, 1, 0))  # (B, H, T_k + 1, d): a zero key in front
    zero_mask = F.pad(mask, (1, 0), value=math.log(module.max_positions))
    probs = _probabilities(module, zero_key, query, zero_mask)  # (B, H, T_q, T_k + 1)
    weights = probs[..., 1:] / (probs[..., 1:] + probs[..., :1])  # sigmoid(S - log n)
    return _merge_heads(module, module.dropout(weights) @ value)


def _bias_pair(std: float) -> Callable[[GPT2Config], dict[str, nn.Module | nn.Parameter]]:
    """k_bias and v_bias [H, d], normal(0, std)."""
    def make(config: GPT2Config) -> dict[str, nn.Module | nn.Parameter]:
        shape = (config.num_attention_heads, config.head_size)
        return {"k_bias": nn.Parameter(torch.randn(shape) * std),
                "v_bias": nn.Parameter(torch.randn(shape) * std)}
    return make


def _first_key(calls: list[torch.Tensor]) -> tuple[torch.Tensor, None]:
    return calls[0][..., 0], None  # probabilities [B, H, T_q, T_k]: key 0 is position 0


def _prepended_key(calls: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return calls[0][..., 1], calls[0][..., 0]  # [B, H, T_q, 1 + T_k]: k' first, then tokens


def _separate_key(calls: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return calls[0][..., 0], calls[1][..., 0]  # softmax over tokens, then p_i [B, H, T_q, 1]


@dataclass(frozen=True)
class Variant:
    """An attention variant: its formula, the parameters it adds to the attention, and
    `read_sinks`, which reads the attention on the sinks for `analysis/outliers.py`.

    `read_sinks` takes the tensors given to `self_attention.dropout` in one forward, in call
    order, and returns (the weight on the first position [B, H, T_q], the weight on the
    bias key k' [B, H, T_q] or None for a variant without one).  For sigmoid the weights
    are sigmoid(S - log n), not normalised; for cabias the weight that multiplies v_0 is the
    softmax over the tokens alone (y = sum_j softmax_j v_j + p v').
    """

    forward: Callable[..., torch.Tensor]
    parameters: Callable[[GPT2Config], dict[str, nn.Module | nn.Parameter]]
    read_sinks: Callable[[list[torch.Tensor]], tuple[torch.Tensor, torch.Tensor | None]] = _first_key


# config.attention_variant -> Variant.
ATTENTION_VARIANTS: dict[str, Variant] = {
    "softmax": Variant(softmax_attention, lambda config: {}),
    "vbias": Variant(vbias_attention, lambda config: {
        "v_bias": nn.Parameter(torch.zeros(config.num_attention_heads, config.head_size))}),
    "cabias": Variant(cabias_attention, _bias_pair(0.02), _separate_key),
    "attn_bias": Variant(attn_bias_attention, _bias_pair(0.02), _prepended_key),
    "ca_softmax": Variant(ca_softmax_attention, lambda config: {
        "context_scale": linear(config, config.hidden_size, config.num_attention_heads)}),
    "sigmoid": Variant(sigmoid_attention, lambda config: {}),
}


def attention_variant(config: GPT2Config) -> Variant:
    """The `Variant` that `config.attention_variant` names."""
    return ATTENTION_VARIANTS[config.attention_variant]

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

k' and v' carry no position: they are neither rotated nor given an ALiBi bias.  Fused path:
softmax, vbias, attn_bias and ca_softmax go through `module.core`, so `attention_impl="sdpa"`
uses scaled_dot_product_attention.  cabias needs the softmax normaliser and sigmoid has no
softmax at all; the fused kernel returns neither, so both run the explicit formula below
under either attention_impl (the stated fallback).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from config import GPT2Config
from modules.common import linear


def _merge_heads(out: torch.Tensor) -> torch.Tensor:
    """[B, H, T, d] -> [B, T, H * d]."""
    B, H, T, d = out.shape
    return out.transpose(1, 2).reshape(B, T, H * d)  # (B, T, D)


def _masked_scores(key: torch.Tensor, query: torch.Tensor,
                   mask: torch.Tensor) -> torch.Tensor:
    """S = Q K^T / sqrt(d), future keys at the dtype's minimum, plus `mask`: [B, H, T_q, T_k]."""
    T_q, T_k = query.shape[2], key.shape[2]
    scores = query @ key.transpose(-1, -2) / math.sqrt(query.shape[-1])  # (B, H, T_q, T_k)
    causal = torch.ones(T_q, T_k, dtype=torch.bool, device=query.device).tril(T_k - T_q)
    return scores.masked_fill(~causal, torch.finfo(scores.dtype).min) + mask


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
    scores = _masked_scores(key, query, mask)  # (B, H, T_q, T_k)
    normaliser = scores.logsumexp(dim=-1, keepdim=True)  # (B, H, T_q, 1)
    probs = module.dropout((scores - normaliser).exp())
    bias_score = query @ module.k_bias[None, :, :, None] / math.sqrt(query.shape[-1])  # (B, H, T_q, 1)
    bias_weight = module.dropout(torch.sigmoid(bias_score - normaliser))  # p_i
    out = probs @ value + bias_weight * module.v_bias[None, :, None, :]  # (B, H, T_q, d)
    return _merge_heads(out)


def ca_softmax_attention(module, key, query, value, mask, x):
    out = module.core(key, query, value, mask)  # (B, T_q, D)
    B, T_q, D = out.shape
    scale = 2.0 * torch.sigmoid(module.context_scale(x))  # (B, T_q, H)
    out = out.view(B, T_q, scale.shape[-1], -1) * scale[..., None]  # (B, T_q, H, d)
    return out.reshape(B, T_q, D)


def sigmoid_attention(module, key, query, value, mask, x):
    scores = _masked_scores(key, query, mask)  # (B, H, T_q, T_k)
    weights = torch.sigmoid(scores - math.log(module.max_positions))
    return _merge_heads(module.dropout(weights) @ value)


def _bias_pair(std: float) -> Callable[[GPT2Config], dict[str, nn.Module | nn.Parameter]]:
    """k_bias and v_bias [H, d], normal(0, std)."""
    def make(config: GPT2Config) -> dict[str, nn.Module | nn.Parameter]:
        shape = (config.num_attention_heads, config.head_size)
        return {"k_bias": nn.Parameter(torch.randn(shape) * std),
                "v_bias": nn.Parameter(torch.randn(shape) * std)}
    return make


@dataclass(frozen=True)
class Variant:
    """An attention variant: its formula and the parameters it adds to the attention."""

    forward: Callable[..., torch.Tensor]
    parameters: Callable[[GPT2Config], dict[str, nn.Module | nn.Parameter]]


# config.attention_variant -> Variant.
ATTENTION_VARIANTS: dict[str, Variant] = {
    "softmax": Variant(softmax_attention, lambda config: {}),
    "vbias": Variant(vbias_attention, lambda config: {
        "v_bias": nn.Parameter(torch.zeros(config.num_attention_heads, config.head_size))}),
    "cabias": Variant(cabias_attention, _bias_pair(0.02)),
    "attn_bias": Variant(attn_bias_attention, _bias_pair(0.02)),
    "ca_softmax": Variant(ca_softmax_attention, lambda config: {
        "context_scale": linear(config, config.hidden_size, config.num_attention_heads)}),
    "sigmoid": Variant(sigmoid_attention, lambda config: {}),
}


def attention_variant(config: GPT2Config) -> Variant:
    """The `Variant` that `config.attention_variant` names."""
    return ATTENTION_VARIANTS[config.attention_variant]

"""Causal multi-head self-attention, the one attention implementation of the kit.

`config.attention_impl` picks how the scores become outputs:
- "eager": the handout's explicit version (`CausalSelfAttention.attention`), written by
  students in Part 1;
- "sdpa": the same computation through `torch.nn.functional.scaled_dot_product_attention`
  (`CausalSelfAttention.sdpa_attention`), the handout's "accelerate attention" extension.
Both agree to 1e-5 in fp32.  Research variants (`config.attention_variant`) add their
branch here.

`KVCache` keeps every layer's keys and values during generation, so each new token costs
one step instead of a recompute of the whole prefix.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from config import GPT2Config


class KVCache:
    """Keys and values of all layers for incremental decoding, preallocated.

    keys/values: [L, B, H, max_length, d]; `length` is how many positions are filled.
    `layer(i)` gives the view a `CausalSelfAttention` writes to; `advance(T)` is called by
    the model once all layers have seen the T new positions.
    """

    def __init__(self, config: GPT2Config, batch_size: int, max_length: int,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32):
        if max_length > config.max_position_embeddings:
            raise ValueError(f"KVCache max_length={max_length} exceeds the context length "
                             f"{config.max_position_embeddings}")
        shape = (config.num_hidden_layers, batch_size, config.num_attention_heads, max_length,
                 config.head_size)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.max_length = max_length
        self.length = 0

    def layer(self, index: int) -> _LayerCache:
        return _LayerCache(self, index)

    def advance(self, num_new: int) -> None:
        self.length += num_new


class _LayerCache:
    """One layer's slice of a `KVCache`."""

    def __init__(self, cache: KVCache, index: int):
        self.cache, self.index = cache, index

    def update(self, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new [B, H, T, d] keys/values; return all of them, [B, H, past + T, d]."""
        cache, start = self.cache, self.cache.length
        end = start + key.shape[2]
        if end > cache.max_length:
            raise ValueError(f"KVCache is full: {start} + {key.shape[2]} new positions > "
                             f"max_length={cache.max_length}")
        cache.keys[self.index, :, :, start:end] = key
        cache.values[self.index, :, :, start:end] = value
        return cache.keys[self.index, :, :, :end], cache.values[self.index, :, :, :end]


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPT2Config):
        super().__init__()
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.head_size
        self.all_head_size = config.hidden_size
        self.query = nn.Linear(config.hidden_size, self.all_head_size)
        self.key = nn.Linear(config.hidden_size, self.all_head_size)
        self.value = nn.Linear(config.hidden_size, self.all_head_size)
        # Dropout on the attention probabilities (after the softmax).
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)
        self.attention_impl = config.attention_impl

    def transform(self, x: torch.Tensor, linear_layer: nn.Linear) -> torch.Tensor:
        """Project and split into heads: [B, T, D] -> [B, H, T, d]."""
        B, T, _ = x.shape
        proj = linear_layer(x)  # (B, T, D)
        proj = proj.view(B, T, self.num_attention_heads, self.attention_head_size)  # (B, T, H, d)
        return proj.transpose(1, 2)  # (B, H, T, d)

    def attention(self, key: torch.Tensor, query: torch.Tensor, value: torch.Tensor,
                  attention_mask: torch.Tensor) -> torch.Tensor:
        """Masked scaled dot-product attention, heads merged (handout 3.1).

        Args:
            key, value: [B, H, T_k, d].
            query: [B, H, T_q, d], the last T_q of the T_k positions (T_q == T_k except
                while generating with a KV cache, where T_q is the number of new tokens).
            attention_mask: additive padding mask [B, 1, 1, T_k]: 0 at real keys, a very
                negative number at padding (see `utils.get_extended_attention_mask`).
        Returns:
            [B, T_q, D] with D = H * d: head h fills columns h*d .. (h+1)*d - 1.

        The rule, in this order:
        1. scores S = Q K^T / sqrt(d), [B, H, T_q, T_k];
        2. causal mask: query i (absolute position i + T_k - T_q) may attend to key j only
           if j <= i + T_k - T_q; set the other scores to torch.finfo(S.dtype).min;
        3. add `attention_mask` (padding);
        4. softmax over the keys (last dimension);
        5. dropout on the probabilities (`self.dropout`; it is a no-op in eval mode);
        6. multiply by V and merge the heads back to [B, T_q, D].
        """
        ### BEGIN SOLUTION
        B, H, T_q, d = query.shape
        T_k = key.shape[2]
        scores = query @ key.transpose(-1, -2) / math.sqrt(d)  # (B, H, T_q, T_k)
        causal = torch.ones(T_q, T_k, dtype=torch.bool, device=query.device).tril(T_k - T_q)
        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)
        scores = scores + attention_mask
        probs = self.dropout(torch.softmax(scores, dim=-1))  # (B, H, T_q, T_k)
        out = probs @ value  # (B, H, T_q, d)
        return out.transpose(1, 2).reshape(B, T_q, H * d)  # (B, T_q, D)
        ### END SOLUTION

    def sdpa_attention(self, key: torch.Tensor, query: torch.Tensor, value: torch.Tensor,
                       attention_mask: torch.Tensor) -> torch.Tensor:
        """The same contract and rule as `attention`, through the fused kernel (handout 7.1).

        Use `torch.nn.functional.scaled_dot_product_attention`.  Pass the causal and padding
        masks together as one additive float mask in `query.dtype` (a boolean mask gives NaN
        for a query whose keys are all masked), or `is_causal=True` when T_q == T_k and
        nothing is padded (the fastest kernel).  The attention dropout probability is
        `self.dropout.p` in training and 0 in eval.  Returns [B, T_q, D].
        """
        ### BEGIN SOLUTION
        B, H, T_q, d = query.shape
        T_k = key.shape[2]
        dropout_p = self.dropout.p if self.training else 0.0
        if T_q == T_k and not attention_mask.any():
            out = F.scaled_dot_product_attention(query, key, value, dropout_p=dropout_p,
                                                 is_causal=True)  # (B, H, T_q, d)
        else:
            causal = torch.ones(T_q, T_k, dtype=torch.bool, device=query.device).tril(T_k - T_q)
            allowed = causal & (attention_mask == 0)  # (B, 1, T_q, T_k)
            mask = torch.zeros(allowed.shape, dtype=query.dtype, device=query.device)
            mask = mask.masked_fill(~allowed, torch.finfo(query.dtype).min)
            out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask,
                                                 dropout_p=dropout_p)  # (B, H, T_q, d)
        return out.transpose(1, 2).reshape(B, T_q, H * d)  # (B, T_q, D)
        ### END SOLUTION

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor,
                cache: _LayerCache | None = None) -> torch.Tensor:
        """hidden_states [B, T, D], attention_mask [B, 1, 1, T_k] -> [B, T, D].

        With a cache, the T new keys/values are appended to the cached ones and
        T_k = past + T; without one, T_k = T.
        """
        key = self.transform(hidden_states, self.key)  # (B, H, T, d)
        value = self.transform(hidden_states, self.value)  # (B, H, T, d)
        query = self.transform(hidden_states, self.query)  # (B, H, T, d)
        if cache is not None:
            key, value = cache.update(key, value)  # (B, H, T_k, d)
        if self.attention_impl == "sdpa":
            return self.sdpa_attention(key, query, value, attention_mask)
        return self.attention(key, query, value, attention_mask)

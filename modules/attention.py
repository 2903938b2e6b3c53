"""Causal multi-head self-attention, the one attention implementation of the kit.

`config.attention_impl` picks how the scores become outputs:
- "eager": the handout's explicit version (`CausalSelfAttention.attention`), written by
  students in Part 1;
- "sdpa": the same computation through `torch.nn.functional.scaled_dot_product_attention`
  (`CausalSelfAttention.sdpa_attention`), the handout's "accelerate attention" extension.
Both agree to 1e-5 in fp32.  Around that core the module runs the research switches
(handout 9): `qk_norm` (a LayerNorm of width d on queries and keys, here), the position
encoding's rotation and score bias (`modules/positions.py`, through the per-forward
`modules/context.py`), and the attention variant (`modules/attention_variants.py`).

`KVCache` keeps every layer's keys and values during generation, so each new token costs
one step instead of a recompute of the whole prefix.

`config.attention_window` and `config.attention_sinks` (handout 7.8, read only here) choose
which earlier keys a query sees: `visible_keys` is the rule, `window_visibility` applies it
at real-token positions once per forward (the attention receives it inside its additive
mask, so every variant and both `attention_impl`s follow it), and `SinkKVCache` is the
bounded cache of windowed generation (StreamingLLM).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from config import GPT2Config
from modules.attention_variants import attention_variant
from modules.common import layer_norm, linear
from modules.context import LayerContext
from modules.positions import PositionEncoding

# config.attention_impl -> the method of CausalSelfAttention that computes softmax attention.
ATTENTION_IMPLS: dict[str, str] = {"eager": "attention", "sdpa": "sdpa_attention"}


class KVCache:
    """Keys and values of all layers for incremental decoding, preallocated.

    keys/values: [L, B, H, max_length, d]; `length` is how many positions are filled.
    `layer(i)` gives the view a `CausalSelfAttention` writes to; `advance(T)` is called by
    the model once all layers have seen the T new positions.
    """

    def __init__(self, config: GPT2Config, batch_size: int, max_length: int,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32):
        limit = PositionEncoding(config).max_length
        if limit is not None and max_length > limit:
            raise ValueError(f"KVCache max_length={max_length} exceeds the context length "
                             f"{limit} (learned positions)")
        shape = (config.num_hidden_layers, batch_size, config.num_attention_heads, max_length,
                 config.head_size)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.max_length = max_length
        self.length = 0

    def layer(self, index: int) -> _LayerCache:
        return _LayerCache(self, index)

    def key_positions(self, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """attention_mask [B, length + T] (0/1, any padding) -> (the position of every key,
        real tokens counted: cumsum(mask) - 1, [B, length + T]; the keys' 0/1 mask, the same)."""
        return (attention_mask.long().cumsum(dim=1) - 1).clamp(min=0), attention_mask

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


def visible_keys(T_q: int, T_k: int, window: int | None = None,
                 sinks: int = 0) -> torch.Tensor:
    """Which keys each query may attend to: sliding windows and attention sinks (handout 7.8).

    Args:
        T_q, T_k: the queries are the last T_q of T_k positions, so query i sits at
            position p = i + T_k - T_q (T_q == T_k without a KV cache).
        window: W; None for no window.
        sinks: S, the number of sink positions.
    Returns:
        [T_q, T_k] torch.bool, True where query i may attend to key j (on the CPU):
        1. j <= p always (causal: a query never sees a later key);
        2. with a window, j > p - W (the W positions p - W + 1 .. p, itself included), or
           j < S (the first S positions stay visible to every later query);
        3. with no window, every j <= p (S changes nothing).

    Example: T_q = T_k = 4, W = 2, S = 1 gives rows [1 0 0 0], [1 1 0 0], [1 1 1 0],
    [1 0 1 1]; T_q = 1, T_k = 4, W = 2, S = 0 gives [0 0 1 1].
    """
    ### BEGIN SOLUTION
    query_at = torch.arange(T_k - T_q, T_k)[:, None]  # (T_q, 1): each query's position
    key_at = torch.arange(T_k)[None, :]  # (1, T_k)
    visible = key_at <= query_at  # (T_q, T_k)
    if window is not None:
        visible = visible & ((key_at > query_at - window) | (key_at < sinks))
    return visible
    ### END SOLUTION


def window_visibility(config: GPT2Config, T_q: int, T_k: int, device: torch.device,
                      query_positions: torch.Tensor | None = None,
                      key_positions: torch.Tensor | None = None) -> torch.Tensor | None:
    """`visible_keys` at real-token positions: [B|1, 1, T_q, T_k] torch.bool, or None
    without `config.attention_window` (every earlier key is visible).

    Without positions the queries are the last T_q of positions 0 .. T_k-1.  With them
    ([B, T_q] and [B, T_k], real tokens counted, as a KV cache gives them), entry
    [b, 0, i, j] is the rule at query position query_positions[b, i] and key position
    key_positions[b, j], read from one table `visible_keys(N, N, W, S)`, so a left-padded
    row gets what the same row gets alone.  The positions are first brought into a small
    range that keeps the rule, so N stays near T_q + S + W however long the sequence: with
    p0 the row's first query position and D = max(0, p0 - W + 1 - S), positions q >= S + D
    become q - D, sinks stay, and the keys in between (in no query's window) become a
    later position, which no query sees.
    """
    window, sinks = config.attention_window, config.attention_sinks
    if window is None:
        return None
    if query_positions is None:
        return visible_keys(T_q, T_k, window, sinks).to(device)[None, None]  # (1, 1, T_q, T_k)
    shift = (query_positions.min(dim=1, keepdim=True).values - window + 1 - sinks).clamp(min=0)
    queries = query_positions - shift  # (B, T_q)
    N = int(queries.max()) + 2
    keys = torch.where(key_positions < sinks, key_positions, key_positions - shift)  # (B, T_k)
    keys = torch.where((key_positions >= sinks) & (keys < sinks), N - 1, keys).clamp(max=N - 1)
    table = visible_keys(N, N, window, sinks).to(device)  # (N, N)
    return table[queries[:, :, None], keys[:, None, :]][:, None]  # (B, 1, T_q, T_k)


class SinkKVCache:
    """The bounded cache of windowed generation: StreamingLLM's rule (Xiao et al., 2023).

    A later query sees only the keys of the first S real positions (the sinks) and of the
    last W - 1 before it, so per row this keeps those: capacity C = S + W - 1 slots,
    keys/values [L, B, H, C, d] however long the generation, with each slot's position
    (`positions` [B, C]) and whether it holds a key (`filled` [B, C]).  Keys keep the
    positions they were computed at (rotary angles, ALiBi distances), so generating through
    this cache equals the full forward under the same window and sinks.

    The same protocol as `KVCache`: `length` counts every position fed (the attention mask
    of a step is [B, length + T]; only its last T columns are read), `key_positions` gives
    the slots' positions and mask followed by the new ones, each layer's `update` returns
    slots + new keys, and `advance` keeps the ones the next query can see (by
    `window_visibility`), in order, once every layer has seen the step.
    """

    def __init__(self, config: GPT2Config, batch_size: int,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32):
        if config.attention_window is None:
            raise ValueError("SinkKVCache needs GPT2Config.attention_window (got None): "
                             "without a window every key stays visible; use KVCache")
        self.config = config
        self.capacity = config.attention_sinks + config.attention_window - 1
        shape = (config.num_hidden_layers, batch_size, config.num_attention_heads,
                 self.capacity, config.head_size)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.positions = torch.zeros(batch_size, self.capacity, dtype=torch.long, device=device)
        self.filled = torch.zeros(batch_size, self.capacity, dtype=torch.long, device=device)
        self.seen = torch.zeros(batch_size, dtype=torch.long, device=device)  # real tokens fed
        self.length = 0
        self._step: dict[str, torch.Tensor] = {}
        self._pending: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def layer(self, index: int) -> _SinkLayerCache:
        return _SinkLayerCache(self, index)

    def key_positions(self, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """attention_mask [B, length + T] -> (positions [B, C + T] of the slots, then of the
        T new tokens, counted over real tokens; their 0/1 mask [B, C + T])."""
        new = attention_mask[:, self.length:].long()  # (B, T)
        positions = (self.seen[:, None] + new.cumsum(dim=1) - 1).clamp(min=0)  # (B, T)
        self._step = {"positions": torch.cat([self.positions, positions], dim=1),
                      "mask": torch.cat([self.filled, new], dim=1)}  # (B, C + T)
        return self._step["positions"], self._step["mask"]

    def advance(self, num_new: int) -> None:
        """Keep, per row, the keys the next real token can see, in order; drop the rest."""
        positions, mask = self._step["positions"], self._step["mask"]  # (B, C + T)
        self.seen = self.seen + mask[:, -num_new:].sum(dim=1)
        next_query = self.seen[:, None]  # (B, 1): the next real token's position
        seen_next = window_visibility(self.config, 1, positions.shape[1], positions.device,
                                      next_query, positions)[:, 0, 0]  # (B, C + T)
        keep = seen_next & mask.bool()
        order = (~keep).long().argsort(dim=1, stable=True)[:, :self.capacity]  # kept first
        self.filled = keep.gather(1, order).long()  # (B, C)
        self.positions = positions.gather(1, order)
        for index, (keys, values) in self._pending.items():
            B, H, _, d = keys.shape
            slots = order[:, None, :, None].expand(B, H, self.capacity, d)
            self.keys[index] = keys.gather(2, slots)
            self.values[index] = values.gather(2, slots)
        self._pending = {}
        self.length += num_new


class _SinkLayerCache:
    """One layer's slots of a `SinkKVCache`."""

    def __init__(self, cache: SinkKVCache, index: int):
        self.cache, self.index = cache, index

    def update(self, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The new [B, H, T, d] keys/values after the slots': [B, H, C + T, d] (kept for
        `advance`)."""
        keys = torch.cat([self.cache.keys[self.index], key], dim=2)  # (B, H, C + T, d)
        values = torch.cat([self.cache.values[self.index], value], dim=2)
        self.cache._pending[self.index] = (keys, values)
        return keys, values


# One layer's slice of either cache: what `LayerContext.cache` holds.
LayerCache = _LayerCache | _SinkLayerCache


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPT2Config):
        super().__init__()
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.head_size
        self.all_head_size = config.hidden_size
        self.query = linear(config, config.hidden_size, self.all_head_size)
        self.key = linear(config, config.hidden_size, self.all_head_size)
        self.value = linear(config, config.hidden_size, self.all_head_size)
        # qk-norm: one LayerNorm of width d for all query heads, one for all key heads.
        norm = (lambda: layer_norm(config, config.head_size)) if config.qk_norm else nn.Identity
        self.q_norm, self.k_norm = norm(), norm()
        # Dropout on the attention probabilities (after the softmax).
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)
        self.attention_impl = config.attention_impl
        self.max_positions = config.max_position_embeddings
        self.positions = PositionEncoding(config)
        self.variant = attention_variant(config)
        for name, parameter in self.variant.parameters(config).items():
            setattr(self, name, parameter)

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
                (With ALiBi it also carries the position bias, [B, H, T_q, T_k], and with
                a sliding window the keys outside it, [B, 1, T_q, T_k]; the rule is the
                same, it broadcasts.)
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
            low = torch.finfo(query.dtype).min
            mask = attention_mask.clamp(min=low).to(query.dtype)  # stays finite in bf16
            mask = mask.masked_fill(~causal, low)  # (B, 1 or H, T_q, T_k)
            out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask,
                                                 dropout_p=dropout_p)  # (B, H, T_q, d)
        return out.transpose(1, 2).reshape(B, T_q, H * d)  # (B, T_q, D)
        ### END SOLUTION

    def core(self, key: torch.Tensor, query: torch.Tensor, value: torch.Tensor,
             attention_mask: torch.Tensor) -> torch.Tensor:
        """Softmax attention through `config.attention_impl` (`attention` or `sdpa_attention`)."""
        return getattr(self, ATTENTION_IMPLS[self.attention_impl])(key, query, value,
                                                                  attention_mask)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor,
                context: LayerContext | None = None) -> torch.Tensor:
        """hidden_states [B, T, D], attention_mask [B, 1, 1, T_k] -> [B, T, D].

        `context` is this layer's per-forward context (`modules.context.LayerContext`: its
        KV-cache slice, rotary tables, ALiBi bias, the window's visible keys), built once per
        forward by the model; None runs the layer alone (positions 0 .. T-1, no KV cache).  Queries and keys are
        normalised (qk_norm), then rotated (rope), then the T new keys/values are appended to
        the cached ones (T_k = past + T; without a cache T_k = T).
        """
        if context is None:
            context = self.positions.default_layer_context(
                hidden_states.shape[1], hidden_states.device, hidden_states.dtype,
                window_visibility(self.positions.config, hidden_states.shape[1],
                                  hidden_states.shape[1], hidden_states.device))
        key = context.rotate(self.k_norm(self.transform(hidden_states, self.key)))  # (B, H, T, d)
        value = self.transform(hidden_states, self.value)  # (B, H, T, d)
        query = context.rotate(self.q_norm(self.transform(hidden_states, self.query)))  # (B, H, T, d)
        if context.cache is not None:
            key, value = context.cache.update(key, value)  # (B, H, T_k, d)
        return self.variant.forward(self, key, query, value, context.mask(attention_mask),
                                    hidden_states)

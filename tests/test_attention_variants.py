"""Every attention variant against its formula, and every variant x position encoding
against the model's invariants: KV cache == full forward (right- and left-padded), eager ==
fused, appended pads change nothing, a changed token changes nothing before it."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from config import SWITCHES, GPT2Config
from models.gpt2 import GPT2Model
from modules.attention import CausalSelfAttention, KVCache
from utils import get_extended_attention_mask

VARIANTS = SWITCHES["attention_variant"]
ENCODINGS = SWITCHES["position_encoding"]
ATOL = 1e-5


def variant_formula(variant, q, k, v, x, attention, lengths, n):
    """y [B, T, H, d] of the docstring formulas, one query and key at a time (float64).

    q, k, v: [B, H, T, d] (no rotation: learned positions); x: [B, T, D]; keys j <= i
    with j < lengths[b] are visible to query i.
    """
    B, H, T, d = q.shape
    out = torch.zeros(B, T, H, d, dtype=torch.float64)
    for b, h, i in itertools.product(range(B), range(H), range(T)):
        keys = [j for j in range(i + 1) if j < lengths[b]]
        scores = torch.stack([q[b, h, i] @ k[b, h, j] / math.sqrt(d) for j in keys])
        values = torch.stack([v[b, h, j] for j in keys])
        if variant == "sigmoid":
            out[b, i, h] = (torch.sigmoid(scores - math.log(n))[:, None] * values).sum(0)
            continue
        if variant == "attn_bias":
            scores = torch.cat([(q[b, h, i] @ attention.k_bias[h] / math.sqrt(d))[None], scores])
            values = torch.cat([attention.v_bias[h][None], values])
        weights = scores.exp() / scores.exp().sum()
        y = (weights[:, None] * values).sum(0)
        if variant == "vbias":
            y = y + attention.v_bias[h]
        if variant == "cabias":
            bias_score = (q[b, h, i] @ attention.k_bias[h] / math.sqrt(d)).exp()
            y = y + bias_score / (bias_score + scores.exp().sum()) * attention.v_bias[h]
        if variant == "ca_softmax":
            y = y * 2 * torch.sigmoid(attention.context_scale(x[b, i])[h])
        out[b, i, h] = y
    return out


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_equals_its_formula_in_float64(variant, impl):
    config = GPT2Config(vocab_size=11, max_position_embeddings=16, hidden_size=12,
                        num_attention_heads=3, num_hidden_layers=1, attention_variant=variant,
                        attention_impl=impl, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    attention = CausalSelfAttention(config).double().eval()
    with torch.no_grad():
        for parameter in attention.parameters():  # v_bias starts at zero: make it count
            parameter.copy_(torch.randn(parameter.shape))
    lengths = [6, 4]
    x = torch.randn(2, 6, 12, dtype=torch.float64)
    mask = (torch.arange(6)[None, :] < torch.tensor(lengths)[:, None]).long()
    with torch.no_grad():
        out = attention(x, get_extended_attention_mask(mask, torch.float64))  # (B, T, D)
        q, k, v = (attention.transform(x, getattr(attention, n)) for n in ("query", "key", "value"))
        expected = variant_formula(variant, q, k, v, x, attention, lengths, n=16)
    torch.testing.assert_close(out, expected.reshape(2, 6, 12), atol=1e-10, rtol=0)


def model_for(variant: str, encoding: str, impl: str = "eager") -> GPT2Model:
    """A tiny model; the other switches rotate with the combination so each gets covered."""
    index = VARIANTS.index(variant) + ENCODINGS.index(encoding)
    config = GPT2Config(
        vocab_size=53, max_position_embeddings=32, hidden_size=24, num_hidden_layers=2,
        num_attention_heads=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        attention_variant=variant, position_encoding=encoding, attention_impl=impl,
        mlp=("gelu_tanh", "swiglu")[index % 2], qk_norm=index % 3 == 0,
        bias=index % 4 != 1, tie_word_embeddings=index % 5 != 2,
        rope_layout=("half", "interleaved")[index % 2], rotary_fraction=(1.0, 0.5)[index % 3 == 1])
    torch.manual_seed(index)
    model = GPT2Model(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(("v_bias", "k_bias")):
                parameter.normal_(0.0, 0.5)
    return model


COMBINATIONS = list(itertools.product(VARIANTS, ENCODINGS))


@pytest.mark.parametrize("variant,encoding", COMBINATIONS)
def test_invariants(variant, encoding):
    model = model_for(variant, encoding)
    fused = model_for(variant, encoding, impl="sdpa")
    fused.load_state_dict(model.state_dict())
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(0, 53, (2, 12), generator=generator)
    mask = torch.ones_like(input_ids)
    with torch.no_grad():
        full = model(input_ids, mask)["last_hidden_state"]
        # eager == fused
        torch.testing.assert_close(fused(input_ids, mask)["last_hidden_state"], full,
                                   atol=ATOL, rtol=0)
        # appended pads change nothing at real tokens
        padded = model(torch.cat([input_ids, input_ids[:, :5]], dim=1),
                       torch.cat([mask, torch.zeros_like(mask[:, :5])], dim=1))
        torch.testing.assert_close(padded["last_hidden_state"][:, :12], full, atol=ATOL, rtol=0)
        # a changed token changes nothing before it
        changed = input_ids.clone()
        changed[:, 7] = (changed[:, 7] + 1) % 53
        after = model(changed, mask)["last_hidden_state"]
        torch.testing.assert_close(after[:, :7], full[:, :7], atol=0, rtol=0)
        assert (after[:, 7] - full[:, 7]).abs().max() > 1e-4
        # KV cache: prompt of 5, then one token at a time, both paths
        for net in (model, fused):
            cache = KVCache(net.config, batch_size=2, max_length=12)
            steps = [net(input_ids[:, :5], mask[:, :5], cache=cache)["last_hidden_state"]]
            steps += [net(input_ids[:, t:t + 1], mask[:, :t + 1], cache=cache)["last_hidden_state"]
                      for t in range(5, 12)]
            torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=ATOL, rtol=0)


@pytest.mark.parametrize("variant,encoding", COMBINATIONS[::3] + [("attn_bias", "rope")])
def test_left_padded_prompt_through_the_cache(variant, encoding):
    """Row 1 is row 0's last 7 tokens, left-padded by 5: with the cache its positions count
    real tokens only, so it matches a full forward of those 7 tokens alone."""
    model = model_for(variant, encoding)
    generator = torch.Generator().manual_seed(2)
    tokens = torch.randint(0, 53, (12,), generator=generator)
    input_ids = torch.stack([tokens, torch.cat([tokens[:5], tokens[5:]])])
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, :5] = 0
    with torch.no_grad():
        alone = model(tokens[None, 5:], torch.ones(1, 7, dtype=torch.long))["last_hidden_state"]
        cache = KVCache(model.config, batch_size=2, max_length=12)
        steps = [model(input_ids[:, :9], mask[:, :9], cache=cache)["last_hidden_state"]]
        steps += [model(input_ids[:, t:t + 1], mask[:, :t + 1], cache=cache)["last_hidden_state"]
                  for t in range(9, 12)]
    torch.testing.assert_close(torch.cat(steps, dim=1)[1, 5:], alone[0], atol=ATOL, rtol=0)


@pytest.mark.parametrize("variant,encoding", list(zip(VARIANTS, (ENCODINGS * 2)[:6], strict=True)))
def test_every_parameter_learns(variant, encoding):
    """One backward through the fused path reaches every parameter (the new ones too)."""
    model = model_for(variant, encoding, impl="sdpa").train()
    input_ids = torch.randint(0, 53, (2, 10), generator=torch.Generator().manual_seed(3))
    hidden = model(input_ids, torch.ones_like(input_ids))["last_hidden_state"]
    model.hidden_state_to_token(hidden).logsumexp(-1).mean().backward()
    silent = [name for name, p in model.named_parameters()
              if p.grad is None or not p.grad.abs().sum() > 0]
    assert silent == []

"""Sliding-window attention and attention sinks (handout 7.8): the rule `visible_keys`, every
variant x position encoding x attention path against a float64 reference masked by hand,
left padding and the KV cache, and generation through the bounded `SinkKVCache`."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from test_attention_variants import ENCODINGS, VARIANTS, model_for

import models.gpt2
from config import GPT2Config
from models.generate import generate
from models.gpt2 import GPT2Model
from modules.attention import CausalSelfAttention, KVCache, SinkKVCache, visible_keys
from utils import get_extended_attention_mask

ATOL = 1e-5
WINDOW, SINKS = 3, 2


def rule(p: int, j: int, window: int | None, sinks: int) -> bool:
    """Key position j is visible to query position p (the issue's words)."""
    return j <= p and (window is None or p - window < j or j < sinks)


@pytest.mark.parametrize("T_q,T_k,window,sinks", [(4, 4, 2, 1), (1, 4, 2, 0), (3, 7, None, 0),
                                                  (3, 7, None, 2), (5, 9, 1, 0), (6, 6, 4, 5),
                                                  (2, 10, 3, 3), (1, 1, 1, 0)])
def test_visible_keys_is_the_rule(T_q, T_k, window, sinks):
    visible = visible_keys(T_q, T_k, window, sinks)
    assert visible.dtype == torch.bool and visible.shape == (T_q, T_k)
    expected = [[rule(i + T_k - T_q, j, window, sinks) for j in range(T_k)] for i in range(T_q)]
    assert visible.tolist() == expected
    if window is None:
        assert torch.equal(visible, torch.ones(T_q, T_k, dtype=torch.bool).tril(T_k - T_q))


@pytest.mark.parametrize("field,value", [("attention_window", 0), ("attention_window", -2),
                                         ("attention_window", 2.5), ("attention_window", True),
                                         ("attention_sinks", -1), ("attention_sinks", 1.0)])
def test_bad_window_values_are_refused_by_name(field, value):
    with pytest.raises(ValueError, match=f"{field}.*{value!r}"):
        GPT2Config(**{field: value, "attention_window": 4} if field == "attention_sinks"
                   else {field: value})


def test_sinks_without_a_window_are_refused():
    with pytest.raises(ValueError, match="attention_sinks=2 needs an attention_window"):
        GPT2Config(attention_sinks=2)


def windowed(model: GPT2Model, window: int | None = WINDOW, sinks: int = SINKS,
             dtype: torch.dtype = torch.float32) -> GPT2Model:
    """A copy of `model` (same weights) with the window and sinks set, in `dtype`."""
    config = GPT2Config(**{**vars(model.config), "attention_window": window,
                           "attention_sinks": sinks})
    copy = GPT2Model(config).eval()
    copy.load_state_dict(model.state_dict())
    return copy.to(dtype)


def hand_masked_reference(model: GPT2Model, input_ids, attention_mask, query_positions,
                          key_positions, monkeypatch) -> torch.Tensor:
    """`model` (no window) in float64 whose padding mask also carries the window and sinks
    at real-token positions, written out entry by entry: [B, 1, T_q, T_k]."""
    B, T_k = key_positions.shape
    T_q = query_positions.shape[1]
    allowed = torch.tensor([[[rule(int(query_positions[b, i]), int(key_positions[b, j]),
                                   WINDOW, SINKS) for j in range(T_k)] for i in range(T_q)]
                            for b in range(B)])[:, None]  # (B, 1, T_q, T_k)
    low = torch.finfo(torch.float64).min

    def masked(mask, dtype):
        return get_extended_attention_mask(mask, dtype).expand(B, 1, T_q, T_k).masked_fill(
            ~allowed, low)

    reference = windowed(model, None, 0, torch.float64)
    with monkeypatch.context() as patch:
        patch.setattr(models.gpt2, "get_extended_attention_mask", masked)
        cache = KVCache(reference.config, B, T_k, dtype=torch.float64)
        return reference(input_ids, attention_mask, cache=cache)["last_hidden_state"]


# every variant x encoding; the attention path alternates, so each variant and each
# encoding runs both (eager == fused is tests/test_attention_variants.py's)
COMBINATIONS = [(variant, encoding, ("eager", "sdpa")[(i + j) % 2])
                for i, variant in enumerate(VARIANTS) for j, encoding in enumerate(ENCODINGS)]


@pytest.mark.parametrize("variant,encoding,impl", COMBINATIONS)
def test_window_and_sinks_equal_a_float64_masked_reference(variant, encoding, impl, monkeypatch):
    """Right-padded rows without a cache, and a left-padded batch through the KV cache (a
    prompt, then one token at a time), both against the hand-masked float64 model."""
    model = windowed(model_for(variant, encoding, impl))
    generator = torch.Generator().manual_seed(5)
    input_ids = torch.randint(0, 53, (2, 11), generator=generator)
    right = torch.ones_like(input_ids)
    right[1, 8:] = 0
    positions = torch.arange(11)[None].expand(2, 11)
    with torch.no_grad():
        out = model(input_ids, right)["last_hidden_state"]
        expected = hand_masked_reference(model, input_ids, right, positions, positions,
                                         monkeypatch)
        torch.testing.assert_close(out[0], expected[0].float(), atol=ATOL, rtol=0)
        torch.testing.assert_close(out[1, :8], expected[1, :8].float(), atol=ATOL, rtol=0)
        left = torch.ones_like(input_ids)
        left[1, :4] = 0
        real = (left.cumsum(dim=1) - 1).clamp(min=0)
        expected = hand_masked_reference(model, input_ids, left, real, real, monkeypatch)
        cache = KVCache(model.config, 2, 11)
        steps = [model(input_ids[:, :6], left[:, :6], cache=cache)["last_hidden_state"]]
        steps += [model(input_ids[:, t:t + 1], left[:, :t + 1], cache=cache)["last_hidden_state"]
                  for t in range(6, 11)]
    out = torch.cat(steps, dim=1)
    torch.testing.assert_close(out[0], expected[0].float(), atol=ATOL, rtol=0)
    torch.testing.assert_close(out[1, 4:], expected[1, 4:].float(), atol=ATOL, rtol=0)


def test_a_left_padded_row_gives_what_it_gives_alone():
    model = windowed(model_for("attn_bias", "alibi"))
    tokens = torch.randint(0, 53, (9,), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        alone = model(tokens[None, 3:], torch.ones(1, 6, dtype=torch.long))["last_hidden_state"]
        mask = torch.ones(2, 9, dtype=torch.long)
        mask[1, :3] = 0
        both = model(torch.stack([tokens, tokens]), mask,
                     cache=KVCache(model.config, 2, 9))["last_hidden_state"]
    torch.testing.assert_close(both[1, 3:], alone[0], atol=ATOL, rtol=0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_layer_alone_takes_the_window(variant):
    """A CausalSelfAttention run on its own (no context) applies the window too: each
    variant's formula over the visible keys only, in float64 (bias keys stay visible)."""
    config = GPT2Config(vocab_size=11, max_position_embeddings=16, hidden_size=12,
                        num_attention_heads=3, num_hidden_layers=1, attention_variant=variant,
                        attention_probs_dropout_prob=0.0, attention_window=2, attention_sinks=1)
    torch.manual_seed(0)
    attention = CausalSelfAttention(config).double().eval()
    with torch.no_grad():
        for parameter in attention.parameters():
            parameter.copy_(torch.randn(parameter.shape))
        x = torch.randn(1, 6, 12, dtype=torch.float64)
        out = attention(x, torch.zeros(1, 1, 1, 6, dtype=torch.float64))
        q, k, v = (attention.transform(x, getattr(attention, n)) for n in ("query", "key", "value"))
    d, n = config.head_size, 16
    for h, i in itertools.product(range(3), range(6)):
        keys = [j for j in range(6) if rule(i, j, 2, 1)]
        scores = torch.stack([q[0, h, i] @ k[0, h, j] / math.sqrt(d) for j in keys])
        values = v[0, h, keys]
        bias_score = q[0, h, i] @ getattr(attention, "k_bias", torch.zeros(3, d, dtype=torch.float64))[h] / math.sqrt(d)
        if variant == "sigmoid":
            y = (torch.sigmoid(scores - math.log(n))[:, None] * values).sum(0)
        elif variant == "attn_bias":
            weights = torch.cat([bias_score[None], scores]).softmax(0)
            y = weights[0] * attention.v_bias[h] + (weights[1:, None] * values).sum(0)
        else:
            y = (scores.softmax(0)[:, None] * values).sum(0)
            if variant == "vbias":
                y = y + attention.v_bias[h]
            if variant == "cabias":
                y = y + torch.sigmoid(bias_score - scores.logsumexp(0)) * attention.v_bias[h]
            if variant == "ca_softmax":
                y = y * 2 * torch.sigmoid(attention.context_scale(x[0, i])[h])
        torch.testing.assert_close(out[0, i, h * d:(h + 1) * d], y, atol=1e-10, rtol=0)


@pytest.mark.parametrize("encoding", ["rope", "alibi", "none"])
def test_the_bounded_cache_equals_the_full_forward(encoding):
    """Through a SinkKVCache (S + W - 1 slots), a left-padded prompt and then one token at a
    time give the full windowed forward's states; the cache never grows."""
    model = windowed(model_for(("cabias", "softmax", "sigmoid")[ENCODINGS.index(encoding) - 1],
                               encoding))
    tokens = torch.randint(0, 53, (2, 16), generator=torch.Generator().manual_seed(7))
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, :3] = 0
    with torch.no_grad():
        full = model(tokens, torch.ones_like(tokens))["last_hidden_state"]
        alone = model(tokens[1:, 3:], mask[1:, 3:])["last_hidden_state"]
        cache = SinkKVCache(model.config, 2)
        shape = cache.keys.shape
        steps = [model(tokens[:, :5], mask[:, :5], cache=cache)["last_hidden_state"]]
        for t in range(5, 16):
            steps.append(model(tokens[:, t:t + 1], mask[:, :t + 1], cache=cache)["last_hidden_state"])
            assert cache.keys.shape == shape == (2, 2, 3, SINKS + WINDOW - 1, 8)
    out = torch.cat(steps, dim=1)
    torch.testing.assert_close(out[0], full[0], atol=ATOL, rtol=0)
    torch.testing.assert_close(out[1, 3:], alone[0], atol=ATOL, rtol=0)


def test_windowed_generation_with_the_bounded_cache_equals_recomputing():
    model = windowed(model_for("softmax", "rope"))
    prompts = [[5, 9, 2, 7, 1, 3], [4, 8]]
    cached = generate(model, prompts, 20, eos_id=None)
    recomputed = generate(model, prompts, 20, eos_id=None, use_cache=False)
    assert cached == recomputed
    assert cached != generate(windowed(model, None, 0), prompts, 20, eos_id=None)


def test_the_sink_cache_needs_a_window():
    with pytest.raises(ValueError, match="attention_window"):
        SinkKVCache(GPT2Config(vocab_size=11, hidden_size=8, num_attention_heads=2,
                               num_hidden_layers=1), 1)


def test_pretrain_flags_set_the_window(capsys):
    import pretrain
    from training.pretrain_flags import build_parser

    args = build_parser().parse_args(["--attention_window", "8", "--attention_sinks", "4",
                                      "--n_layer", "1", "--n_embd", "8", "--n_head", "2"])
    model = pretrain.build_model(args, {"vocab_size": 11, "eot_token": 10})
    assert (model.config.attention_window, model.config.attention_sinks) == (8, 4)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--attention_window", "0"])
    assert "--attention_window: 0 is not an integer >= 1" in capsys.readouterr().err


def test_a_windowed_model_is_not_exported():
    from models.export import export_problems

    config = GPT2Config(vocab_size=11, hidden_size=8, num_attention_heads=2,
                        num_hidden_layers=1, attention_window=4)
    assert [line.split(":")[0] for line in export_problems(config)] == ["attention_window=4"]


def test_the_task_flags_set_the_window(tmp_path):
    import argparse

    from training.args import add_model_args
    from training.loading import load_gpt2
    from utils import save_random_hf_checkpoint

    path = save_random_hf_checkpoint(tmp_path / "gpt2", GPT2Config(
        vocab_size=50257, max_position_embeddings=16, hidden_size=8, num_attention_heads=2,
        num_hidden_layers=1))
    parser = argparse.ArgumentParser()
    add_model_args(parser)
    windowed_args = parser.parse_args(["--model_path", str(path), "--attention_window", "4",
                                       "--attention_sinks", "1"])
    model = load_gpt2(windowed_args)
    assert (model.config.attention_window, model.config.attention_sinks) == (4, 1)
    model = load_gpt2(parser.parse_args(["--model_path", str(path)]))
    assert (model.config.attention_window, model.config.attention_sinks) == (None, 0)

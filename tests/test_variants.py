"""Research switches (handout 8) against trusted implementations, on random weights.

Trusted references: transformers' GPTNeoXForCausalLM (RoPE), BLOOM's `build_alibi_tensor`
(ALiBi) and LlamaMLP (SwiGLU) at fp32 1e-5; each attention variant against a plain float64
loop over its formula at 1e-10.
"""

from __future__ import annotations

import pytest
import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, LlamaConfig
from transformers.models.bloom.modeling_bloom import _get_alibi_slopes, build_alibi_tensor
from transformers.models.llama.modeling_llama import LlamaMLP

from config import GPT2Config
from models.gpt2 import GPT2Model
from modules.gpt2_layer import GPT2Layer
from modules.positions import alibi_bias, alibi_slopes

ATOL = 1e-5
SMALL = dict(vocab_size=97, max_position_embeddings=64, hidden_size=32, num_hidden_layers=2,
             num_attention_heads=2, intermediate_size=128, hidden_dropout_prob=0.0,
             attention_probs_dropout_prob=0.0)


def right_padded(vocab: int, lengths: list[int], seq_len: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, vocab, (len(lengths), seq_len), generator=generator)
    mask = (torch.arange(seq_len)[None, :] < torch.tensor(lengths)[:, None]).long()
    return input_ids, mask


def neox_to_ours(neox: GPTNeoXForCausalLM, num_heads: int) -> dict[str, torch.Tensor]:
    """GPT-NeoX names -> ours.  Its fused query_key_value [3D, D] is laid out per head as
    (q_h, k_h, v_h), each d rows."""
    state = neox.gpt_neox.state_dict()
    ours = {"word_embedding.weight": state["embed_in.weight"],
            "final_layer_norm.weight": state["final_layer_norm.weight"],
            "final_layer_norm.bias": state["final_layer_norm.bias"]}
    for i in range(neox.config.num_hidden_layers):
        hf, mine = f"layers.{i}.", f"gpt_layers.{i}."
        weight = state[hf + "attention.query_key_value.weight"]  # (3D, D)
        D = weight.shape[1]
        weight = weight.view(num_heads, 3, D // num_heads, D)  # (H, 3, d, D)
        bias = state[hf + "attention.query_key_value.bias"].view(num_heads, 3, -1)  # (H, 3, d)
        for index, name in enumerate(("query", "key", "value")):
            ours[f"{mine}self_attention.{name}.weight"] = weight[:, index].reshape(D, D)
            ours[f"{mine}self_attention.{name}.bias"] = bias[:, index].reshape(D)
        for our_name, hf_name in (("attention_dense", "attention.dense"),
                                  ("interm_dense", "mlp.dense_h_to_4h"),
                                  ("out_dense", "mlp.dense_4h_to_h"),
                                  ("attention_layer_norm", "input_layernorm"),
                                  ("out_layer_norm", "post_attention_layernorm")):
            for kind in ("weight", "bias"):
                ours[f"{mine}{our_name}.{kind}"] = state[f"{hf}{hf_name}.{kind}"]
    return ours


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
@pytest.mark.parametrize("fraction", [1.0, 0.5])
def test_rope_matches_gpt_neox(impl, fraction):
    neox_config = GPTNeoXConfig(
        vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128, max_position_embeddings=64, hidden_act="gelu_new",
        use_parallel_residual=False, tie_word_embeddings=True, layer_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                         "partial_rotary_factor": fraction})
    torch.manual_seed(0)
    neox = GPTNeoXForCausalLM(neox_config).eval()
    ours = GPT2Model(GPT2Config(**SMALL, position_encoding="rope", rotary_fraction=fraction,
                                attention_impl=impl)).eval()
    ours.load_state_dict(neox_to_ours(neox, 2))
    input_ids, mask = right_padded(97, [20, 13, 4], 20)
    real = mask.bool()
    with torch.no_grad():
        logits = ours.hidden_state_to_token(ours(input_ids, mask)["last_hidden_state"])
        expected = neox(input_ids=input_ids, attention_mask=mask).logits
    torch.testing.assert_close(logits[real], expected[real], atol=ATOL, rtol=0)


@pytest.mark.parametrize("heads", range(1, 17))
def test_alibi_matches_bloom_up_to_a_constant_per_query(heads):
    slopes = alibi_slopes(heads)
    torch.testing.assert_close(slopes, _get_alibi_slopes(heads, torch.device("cpu")),
                               atol=0, rtol=1e-6)
    _, mask = right_padded(5, [9, 6], 9)
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)  # (B, T)
    ours = alibi_bias(slopes, positions.float(), positions.float())  # (B, H, T, T)
    bloom = build_alibi_tensor(mask, heads, torch.float32).view(2, heads, 1, 9)  # (B, H, 1, T)
    # BLOOM adds slope * key position; ours adds slope * (key - query) position: they differ
    # by -slope * query position, one constant per query (softmax ignores it).
    constant = -slopes[None, :, None, None] * positions[:, None, :, None].float()
    allowed = torch.ones(9, 9, dtype=torch.bool).tril() & mask.bool()[:, None, None, :]
    difference = (ours - bloom - constant).masked_fill(~allowed, 0.0)
    torch.testing.assert_close(difference, torch.zeros_like(difference), atol=1e-5, rtol=0)


def test_alibi_slopes_worked_example():
    torch.testing.assert_close(alibi_slopes(6), torch.tensor([2.0 ** -e for e in
                                                              (2, 4, 6, 8, 1, 3)]))


@pytest.mark.parametrize("bias", [False, True])
def test_swiglu_matches_llama_mlp(bias):
    config = GPT2Config(**{**SMALL, "intermediate_size": None}, mlp="swiglu", bias=bias)
    assert config.intermediate_size == 256  # 256 * ceil(int(8 * 32 / 3) / 256)
    llama = LlamaMLP(LlamaConfig(hidden_size=32, intermediate_size=256, hidden_act="silu",
                                 mlp_bias=bias))
    layer = GPT2Layer(config)
    with torch.no_grad():
        for ours, theirs in (("gate_dense", "gate_proj"), ("interm_dense", "up_proj"),
                             ("out_dense", "down_proj")):
            getattr(layer, ours).weight.copy_(getattr(llama, theirs).weight)
            if bias:
                getattr(layer, ours).bias.copy_(getattr(llama, theirs).bias)
        x = torch.randn(3, 5, 32)
        ours = layer.out_dense(layer.interm_af(layer.interm_dense(x)))
        torch.testing.assert_close(ours, llama(x), atol=ATOL, rtol=0)


@pytest.mark.parametrize("fraction", [1.0, 0.5])
def test_interleaved_equals_half_after_the_channel_permutation(fraction):
    """Channel k of the half layout is channel 2k of the interleaved one and channel k + r/2
    is 2k + 1: permuting query/key rows (and their qk-norms) that way gives equal outputs."""
    configs = {layout: GPT2Config(**SMALL, position_encoding="rope", rope_layout=layout,
                                  rotary_fraction=fraction, qk_norm=True)
               for layout in ("half", "interleaved")}
    half = GPT2Model(configs["half"]).eval()
    interleaved = GPT2Model(configs["interleaved"]).eval()
    d, r = configs["half"].head_size, configs["half"].rotary_dims
    order = torch.arange(d)  # interleaved channel c holds half channel order[c]
    order[0:r:2], order[1:r:2] = torch.arange(r // 2), torch.arange(r // 2) + r // 2
    heads = (torch.arange(2)[:, None] * d + order[None, :]).flatten()  # (D,)
    with torch.no_grad():
        for parameter in half.parameters():  # make the norms' weights and biases non-trivial
            parameter.add_(torch.randn(parameter.shape) * 0.1)
    state = {}
    for name, tensor in half.state_dict().items():
        if any(f"self_attention.{p}." in name for p in ("query", "key")):
            tensor = tensor[heads]
        elif any(f"self_attention.{p}." in name for p in ("q_norm", "k_norm")):
            tensor = tensor[order]
        state[name] = tensor
    interleaved.load_state_dict(state)
    input_ids, mask = right_padded(97, [16, 9], 16)
    with torch.no_grad():
        a = half(input_ids, mask)["last_hidden_state"]
        b = interleaved(input_ids, mask)["last_hidden_state"]
    torch.testing.assert_close(b[mask.bool()], a[mask.bool()], atol=ATOL, rtol=0)

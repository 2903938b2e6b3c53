"""Quantization (modules/quantize.py, handout 7.4) against its formula, and its switches.

Tolerances: `quantize_int8` equals the float64 formula exactly (q and scale); `Int8Linear`
equals x @ dequantized^T + b at 1e-6; a quantized tiny model stays within a few percent of
its float logits (random weights: the rounding error is what it is, not a trained model's).
"""

import dataclasses

import pytest
import torch
from torch import nn

import evaluate_lm
from config import GPT2Config
from models.gpt2 import GPT2Model
from modules.quantize import (
    Int8Embedding,
    Int8GatedDense,
    Int8Linear,
    dequantize_int8,
    model_bytes,
    quantize_int8,
    quantize_model,
)
from tests.conftest import TINY


def formula(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The issue's formula in float64: scale = max|row| / 127 (1 for a zero row), q =
    clamp(round(w / scale), -127, 127)."""
    w = weight.to(torch.float64)
    scale = w.abs().amax(dim=1) / 127
    scale[scale == 0] = 1.0
    return torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8), scale


def tiny_model(seed: int = 0, **fields) -> GPT2Model:
    torch.manual_seed(seed)
    return GPT2Model(GPT2Config(**{**TINY, **fields})).eval()


def test_quantize_int8_equals_the_float64_formula_exactly():
    weight = torch.randn(7, 13, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    weight[3] = 0.0  # an all-zero row: scale 1
    weight[5, 2] = -weight[5].abs().max() * 2  # the row's extreme is negative
    q, scale = quantize_int8(weight)
    q_ref, scale_ref = formula(weight)
    assert q.dtype == torch.int8 and scale.dtype == torch.float32
    assert q.shape == (7, 13) and scale.shape == (7,)
    assert torch.equal(q, q_ref)
    assert torch.equal(scale, scale_ref.to(torch.float32))
    assert scale[3] == 1.0 and q[5, 2] == -127 and q.abs().amax(dim=1)[[0, 1, 2, 4, 5, 6]].eq(127).all()


def test_quantize_int8_rounds_half_to_even_and_matches_float32_formula():
    weight = torch.tensor([[127.0, 2.5, -2.5, 3.5, 0.5, -0.5]])  # scale 1: ties exactly
    q, scale = quantize_int8(weight)
    assert scale.tolist() == [1.0]
    assert q.tolist() == [[127, 2, -2, 4, 0, 0]]
    weight32 = torch.randn(16, 9, generator=torch.Generator().manual_seed(1))
    q32, scale32 = quantize_int8(weight32.t().contiguous().t())  # input-major, as the kit's
    scale_ref = weight32.abs().amax(dim=1) / 127
    assert torch.equal(scale32, scale_ref)
    assert torch.equal(q32, torch.round(weight32 / scale_ref[:, None]).to(torch.int8))


def test_int8_linear_equals_the_dequantized_product():
    torch.manual_seed(0)
    layer = nn.Linear(12, 5)
    x = torch.randn(3, 4, 12)
    int8 = Int8Linear.from_linear(layer)
    q, scale = quantize_int8(layer.weight)
    assert torch.equal(int8.q, q) and torch.equal(int8.scale, scale)
    reference = x @ dequantize_int8(q, scale).T + layer.bias.detach()
    torch.testing.assert_close(int8(x), reference, atol=1e-6, rtol=1e-6)
    assert (int8(x) - layer(x)).abs().max() < 0.02  # close to the float layer
    x64 = x.double()
    out64 = int8(x64)
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64, x64 @ dequantize_int8(q, scale).double().T
                               + layer.bias.detach().double(), atol=1e-12, rtol=0)
    assert int8(x.bfloat16()).dtype == torch.bfloat16
    no_bias = Int8Linear.from_linear(nn.Linear(12, 5, bias=False))
    assert no_bias.bias is None and no_bias(x).shape == (3, 4, 5)
    assert not list(int8.parameters())  # nothing trains
    with pytest.raises(TypeError, match="takes an nn.Linear, got Embedding"):
        Int8Linear.from_linear(nn.Embedding(3, 4))


def test_int8_linear_keeps_the_kits_input_major_layout():
    model = tiny_model()
    query = model.gpt_layers[0].self_attention.query
    assert query.weight.stride() == (1, query.out_features)
    int8 = Int8Linear.from_linear(query)
    assert int8.q.stride() == query.weight.stride()
    x = torch.randn(2, 3, query.in_features)
    torch.testing.assert_close(int8(x), x @ dequantize_int8(int8.q, int8.scale).T + int8.bias,
                               atol=1e-6, rtol=1e-6)


def test_gpt2_small_blocks_take_at_most_55_percent_of_their_fp32_bytes():
    """gpt2-small's shape, built on the meta device: bytes only, no arithmetic."""
    with torch.device("meta"):
        model = GPT2Model(GPT2Config())
    assert model.config.hidden_size == 768 and model.config.num_hidden_layers == 12
    blocks_fp32, whole_fp32 = model_bytes(model.gpt_layers), model_bytes(model)
    assert blocks_fp32 == 4 * sum(p.numel() for p in model.gpt_layers.parameters())
    quantize_model(model, "int8")
    assert model_bytes(model.gpt_layers) <= 0.55 * blocks_fp32
    assert model_bytes(model.gpt_layers) / blocks_fp32 == pytest.approx(0.2520, abs=1e-3)
    assert isinstance(model.word_embedding, nn.Embedding)  # embeddings stay float
    assert model_bytes(model) < whole_fp32


def test_quantize_model_modes_and_embeddings():
    model = tiny_model()
    ids = torch.randint(0, TINY["vocab_size"], (2, 9), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0

    def logits(m):
        return m.hidden_state_to_token(m(ids, mask)["last_hidden_state"])

    reference = logits(model)
    int8 = quantize_model(tiny_model(), "int8")
    linears = [m for m in int8.gpt_layers.modules() if isinstance(m, nn.Linear)]
    assert linears == [] and sum(isinstance(m, Int8Linear) for m in int8.modules()) == 12
    assert (logits(int8) - reference).abs().max() < 0.05 * reference.abs().max()
    everything = quantize_model(tiny_model(), "int8", include_embeddings=True)
    assert isinstance(everything.word_embedding, Int8Embedding)
    assert isinstance(everything.pos_embedding, Int8Embedding)
    torch.testing.assert_close(everything.output_weight, dequantize_int8(
        *quantize_int8(tiny_model().word_embedding.weight)))
    assert (logits(everything) - reference).abs().max() < 0.05 * reference.abs().max()
    assert model_bytes(everything) < model_bytes(int8) < model_bytes(model)
    bf16 = quantize_model(tiny_model(), "bf16")
    assert all(p.dtype == torch.bfloat16 for p in bf16.parameters())
    assert model_bytes(bf16) < model_bytes(model)
    torch.testing.assert_close(logits(bf16).float(), reference, atol=0.05, rtol=0.05)


def test_quantize_model_refuses_bad_values():
    with pytest.raises(ValueError, match=r"mode 'int4'; choose one of \['int8', 'bf16'\]"):
        quantize_model(tiny_model(), "int4")


def test_swiglu_blocks_quantize_with_their_gate():
    """SwiGLU's gated value projection becomes an `Int8GatedDense` gated by the int8
    gate_dense: the model then equals the float model holding the dequantized weights."""
    ids = torch.randint(0, TINY["vocab_size"], (2, 7), generator=torch.Generator().manual_seed(3))
    mask = torch.ones_like(ids)
    float_model, int8 = tiny_model(mlp="swiglu"), quantize_model(tiny_model(mlp="swiglu"), "int8")
    with torch.no_grad():
        for layer in float_model.gpt_layers.modules():
            if isinstance(layer, nn.Linear):
                layer.weight.copy_(dequantize_int8(*quantize_int8(layer.weight)))
    assert not [m for m in int8.gpt_layers.modules() if isinstance(m, nn.Linear)]
    gated = [m for m in int8.modules() if isinstance(m, Int8GatedDense)]
    assert len(gated) == TINY["num_hidden_layers"]
    assert all(m.gate[0] is layer.gate_dense for m, layer in zip(gated, int8.gpt_layers, strict=True))
    torch.testing.assert_close(int8(ids, mask)["last_hidden_state"],
                               float_model(ids, mask)["last_hidden_state"], atol=1e-6, rtol=1e-6)


def test_evaluate_lm_quantized(make_checkpoint, data_dir, tmp_path, capsys):
    text = tmp_path / "sample.txt"
    text.write_text((data_dir / "tinyshakespeare" / "input.txt").read_text()[:600])
    folder = str(make_checkpoint(seed=4, vocab_size=50257))
    common = ["--model", folder, "--text", str(text), "--tokenizer",
              str(data_dir / "gpt2-tokenizer"), "--block_size", "64"]
    fp32 = evaluate_lm.main(common)
    int8 = evaluate_lm.main([*common, "--quantize", "int8"])
    assert fp32["quantize"] == "none" and int8["quantize"] == "int8"
    assert int8["model_bytes"] < fp32["model_bytes"]
    assert int8["tokens"] == fp32["tokens"]
    assert int8["bits_per_byte"] == pytest.approx(fp32["bits_per_byte"], rel=0.01)
    with pytest.raises(SystemExit):
        evaluate_lm.main([*common, "--quantize", "int4"])
    assert "invalid choice: 'int4'" in capsys.readouterr().err


def test_model_bytes_counts_tied_weights_once():
    model = tiny_model()
    config = dataclasses.asdict(model.config)
    assert config["tie_word_embeddings"]
    expected = sum(p.numel() * p.element_size() for p in model.parameters()) + sum(
        b.numel() * b.element_size() for b in model.buffers())
    assert model_bytes(model) == expected


def test_quantize_for_eval_merges_lora_then_quantizes(capsys):
    import argparse

    from models.generate import generate
    from modules.lora import LoRALinear, apply_lora
    from training.finetune import quantize_for_eval

    model = tiny_model()
    assert quantize_for_eval(model, argparse.Namespace(quantize="none"), "x") is model
    assert isinstance(model.gpt_layers[0].self_attention.query, nn.Linear)
    apply_lora(model, ("query", "value"), r=2, alpha=4)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LoRALinear):
                module.lora_B.normal_()
    ids = torch.randint(0, TINY["vocab_size"], (1, 6), generator=torch.Generator().manual_seed(3))
    adapted = model(ids, torch.ones_like(ids))["last_hidden_state"]
    quantize_for_eval(model, argparse.Namespace(quantize="int8"), "x")
    assert "[x] quantized int8:" in capsys.readouterr().out
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert isinstance(model.gpt_layers[0].self_attention.query, Int8Linear)
    int8 = model(ids, torch.ones_like(ids))["last_hidden_state"]
    assert (int8 - adapted).abs().max() < 0.05 * adapted.abs().max()  # the update kept
    prompts = [[1, 2, 3], [4, 5]]
    cached = generate(model, prompts, max_new_tokens=5, eos_id=None)
    assert cached == generate(model, prompts, max_new_tokens=5, eos_id=None, use_cache=False)

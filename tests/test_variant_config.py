"""Research switches: validation at construction, parameter names (contracts for checkpoints
and graders), and loading Hugging Face GPT-2 weights into a variant."""

from __future__ import annotations

import importlib
import logging

import pytest
import torch
from transformers import GPT2LMHeadModel

from config import SWITCHES, GPT2Config
from models.gpt2 import GPT2Model
from training.checkpoint import model_from_checkpoint

TINY = dict(vocab_size=61, max_position_embeddings=32, hidden_size=24, num_hidden_layers=2,
            num_attention_heads=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


@pytest.mark.parametrize("field,value,message", [
    ("attention_variant", "flash", r"attention_variant='flash'; allowed values: \['softmax'"),
    ("position_encoding", "sinusoid", r"position_encoding='sinusoid'; allowed values"),
    ("rope_layout", "gptj", r"rope_layout='gptj'; allowed values: \['half', 'interleaved'\]"),
    ("mlp", "relu", r"mlp='relu'; allowed values: \['gelu_tanh', 'gelu', 'swiglu'\]"),
    ("qk_norm", 1, r"qk_norm must be True or False, got 1"),
    ("bias", "no", r"bias must be True or False"),
    ("tie_word_embeddings", None, r"tie_word_embeddings must be True or False"),
    ("mu_centering", 0, r"mu_centering must be True or False"),
    ("rope_theta", 0.0, r"rope_theta must be positive, got 0.0"),
    ("rotary_fraction", 0.0, r"rotary_fraction must be in \(0, 1\], got 0.0"),
    ("rotary_fraction", 1.5, r"rotary_fraction must be in \(0, 1\]"),
    ("z_loss", -1e-4, r"z_loss must be >= 0, got -0.0001"),
    ("mu_loss", float("nan"), r"mu_loss must be >= 0, got nan"),
])
def test_bad_switches_fail_at_construction(field, value, message):
    with pytest.raises(ValueError, match=message):
        GPT2Config(**TINY, **{field: value})


def test_rope_needs_an_even_positive_number_of_rotated_channels():
    with pytest.raises(ValueError, match=r"rotates int\(8 \* 0.1\) = 0 channels"):
        GPT2Config(**{**TINY, "num_attention_heads": 1, "hidden_size": 8},
                   position_encoding="rope", rotary_fraction=0.1)
    with pytest.raises(ValueError, match=r"= 3 channels of each head; rotary needs a positive "
                                         "even number"):
        GPT2Config(**{**TINY, "hidden_size": 18}, position_encoding="rope",
                   rotary_fraction=0.5)
    assert GPT2Config(**{**TINY, "hidden_size": 18}, rotary_fraction=0.5).rotary_dims == 3


def test_intermediate_size_none_means_the_usual_width():
    assert GPT2Config().intermediate_size == 3072
    assert GPT2Config(mlp="swiglu").intermediate_size == 2048  # 256 * ceil(2048 / 256)
    assert GPT2Config(hidden_size=1024, num_attention_heads=16,
                      mlp="swiglu").intermediate_size == 2816  # int(8 * 1024 / 3) = 2730
    assert GPT2Config(mlp="swiglu", intermediate_size=100).intermediate_size == 100
    assert GPT2Config.from_preset("gpt2-medium").intermediate_size == 4096
    assert GPT2Config.from_preset("gpt2", mlp="swiglu").intermediate_size == 2048


def shapes(**switches) -> dict[str, tuple[int, ...]]:
    model = GPT2Model(GPT2Config(**TINY, **switches))
    return {name: tuple(p.shape) for name, p in model.named_parameters()}


def test_new_parameter_names_and_shapes():
    default = shapes()
    assert "pos_embedding.weight" in default and "output_embedding" not in default
    attention = "gpt_layers.0.self_attention."
    assert shapes(attention_variant="vbias")[attention + "v_bias"] == (3, 8)
    for variant in ("cabias", "attn_bias"):
        found = shapes(attention_variant=variant)
        assert found[attention + "k_bias"] == found[attention + "v_bias"] == (3, 8)
    found = shapes(attention_variant="ca_softmax")
    assert found[attention + "context_scale.weight"] == (3, 24)
    assert found[attention + "context_scale.bias"] == (3,)
    found = shapes(qk_norm=True)
    assert found[attention + "q_norm.weight"] == found[attention + "k_norm.bias"] == (8,)
    found = shapes(mlp="swiglu")
    assert found["gpt_layers.1.gate_dense.weight"] == found["gpt_layers.1.interm_dense.weight"]
    assert found["gpt_layers.1.gate_dense.weight"] == (256, 24)
    assert found["gpt_layers.1.out_dense.weight"] == (24, 256)
    assert shapes(tie_word_embeddings=False)["output_embedding"] == (61, 24)
    for encoding in ("alibi", "rope", "none"):
        assert not any(name.startswith("pos_embedding") for name in shapes(
            position_encoding=encoding))
    no_bias = shapes(bias=False, qk_norm=True, attention_variant="attn_bias")
    assert not any(name.endswith(".bias") for name in no_bias)
    assert set(no_bias) == {name for name in shapes(qk_norm=True, attention_variant="attn_bias")
                            if not name.endswith(".bias")}


def test_fresh_init_of_the_new_parameters():
    torch.manual_seed(0)
    model = GPT2Model(GPT2Config(**TINY, attention_variant="vbias", mlp="swiglu"))
    attention = model.gpt_layers[0].self_attention
    assert torch.equal(attention.v_bias, torch.zeros(3, 8))
    assert abs(float(model.gpt_layers[0].gate_dense.weight.detach().std()) - 0.02) < 0.005
    model = GPT2Model(GPT2Config(**TINY, attention_variant="attn_bias"))
    assert abs(float(model.gpt_layers[1].self_attention.k_bias.detach().std()) - 0.02) < 0.01


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from transformers import GPT2Config as HFConfig

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(HFConfig(vocab_size=61, n_positions=32, n_embd=24, n_layer=2,
                                  n_head=3, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))
    folder = tmp_path_factory.mktemp("gpt2")
    hf.save_pretrained(folder)
    return folder, hf.eval()


def logits_of(model, input_ids):
    mask = torch.ones_like(input_ids)
    with torch.no_grad():
        return model.hidden_state_to_token(model(input_ids, mask)["last_hidden_state"])


def test_loading_gpt2_into_a_variant_reports_new_and_dropped(checkpoint, caplog):
    folder, hf = checkpoint
    input_ids = torch.randint(0, 61, (2, 9))
    with torch.no_grad():
        expected = hf(input_ids=input_ids).logits
    with caplog.at_level(logging.WARNING):
        vbias = GPT2Model.from_pretrained(str(folder), attention_variant="vbias",
                                          tie_word_embeddings=False).eval()
    message = caplog.text
    assert "new parameters" in message and "gpt_layers.0.self_attention.v_bias" in message
    assert "'output_embedding'" in message
    # zero v_bias and an output embedding copied from the word embedding: GPT-2 exactly
    torch.testing.assert_close(logits_of(vbias, input_ids), expected, atol=1e-5, rtol=0)
    assert vbias.output_embedding.data_ptr() != vbias.word_embedding.weight.data_ptr()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        GPT2Model.from_pretrained(str(folder), position_encoding="rope", bias=False)
    assert "not used: ['final_layer_norm.bias'" in caplog.text
    assert "'pos_embedding.weight'" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        GPT2Model.from_pretrained(str(folder))
    assert caplog.text == ""


def test_a_variant_checkpoint_round_trips_through_from_checkpoint(tmp_path):
    """pretrain.py saves `model_args` (every GPT2Config field) beside the weights."""
    import dataclasses

    config = GPT2Config(**TINY, attention_variant="cabias", position_encoding="rope",
                        rope_layout="interleaved", mlp="swiglu", qk_norm=True, bias=False,
                        tie_word_embeddings=False, z_loss=1e-4, mu_centering=True)
    model = GPT2Model(config).eval()
    torch.save({"model": model.state_dict(), "model_args": dataclasses.asdict(config)},
               tmp_path / "ckpt.pt")
    loaded = model_from_checkpoint(tmp_path / "ckpt.pt").eval()
    assert loaded.config == config
    input_ids = torch.randint(0, 61, (2, 9))
    assert torch.equal(logits_of(loaded, input_ids), logits_of(model, input_ids))


@pytest.mark.parametrize("switch, module, registry", [
    ("attention_impl", "modules.attention", "ATTENTION_IMPLS"),
    ("attention_variant", "modules.attention_variants", "ATTENTION_VARIANTS"),
    ("position_encoding", "modules.positions", "POSITION_ENCODINGS"),
    ("rope_layout", "modules.positions", "ROPE_LAYOUTS"),
    ("mlp", "modules.mlp", "MLPS"),
])
def test_every_switch_value_has_its_registry_entry(switch, module, registry):
    """`config.SWITCHES` lists, per switch, exactly the keys of the registry in the one
    module that reads it (the module named beside it), in the same order."""
    assert set(SWITCHES) == {"attention_impl", "attention_variant", "position_encoding",
                             "rope_layout", "mlp"}
    assert tuple(getattr(importlib.import_module(module), registry)) == SWITCHES[switch]

"""A kit model as a `transformers` model, and GPT-NeoX weights as a kit model.

`to_hf(model)` gives the `transformers` model that computes the same function:

- learned positions (or none: a zero table), `gelu_tanh` or `gelu`, softmax attention
  -> `GPT2LMHeadModel`;
- `position_encoding="rope"` with the half layout (any `rotary_fraction`), `gelu_tanh` or
  `gelu`, softmax -> `GPTNeoXForCausalLM` with a sequential residual (`use_parallel_residual=False`).

`bias=False` exports as zero biases and an untied output as a separate `lm_head`; the
training-only options (z_loss, mu_loss, mu_centering) do not change the function.  Any
other switch is refused (`export_problems` says why).  The other direction, a GPT-NeoX
checkpoint loaded by `GPT2Model.from_pretrained`, reads `config_from_neox` and
`neox_to_ours`.

Weight layouts.  GPT-2's projections are `Conv1D`s, [in, out]; its `c_attn` holds
query | key | value side by side, [D, 3D].  GPT-NeoX's are `nn.Linear`s, [out, in]; its
`query_key_value` [3D, D] holds, for each head h in turn, that head's d query rows, d key
rows, d value rows.
"""

from __future__ import annotations

from typing import Any

import torch

from config import HF_ACTIVATION_OF, HF_ACTIVATIONS, GPT2Config
from models.gpt2 import GPT2Model

# (switch, value) -> why no transformers class computes a model with it.
REFUSED: dict[tuple[str, Any], str] = {
    ("position_encoding", "alibi"):
        "the transformers classes with ALiBi differ elsewhere: BLOOM normalises the "
        "embeddings with an extra LayerNorm and MPT uses the exact (erf) GELU and other "
        "slopes for a head count that is not a power of two",
    ("rope_layout", "interleaved"):
        "GPT-NeoX pairs rotary channels (i, i + r/2); GPT-J, which pairs (2i, 2i + 1), adds "
        "attention and MLP in parallel, so no class has a sequential block with interleaved "
        "rotary",
    ("mlp", "swiglu"):
        "GPT-2 and GPT-NeoX have a GELU MLP; the classes with SwiGLU (LLaMA, Mistral, ...) "
        "use RMSNorm instead of LayerNorm",
    ("qk_norm", True):
        "neither GPT-2 nor GPT-NeoX normalises queries and keys, and the classes that do "
        "(OLMo 2, Qwen 3, ...) use RMSNorm and SwiGLU",
}
for _variant in ("vbias", "cabias", "attn_bias", "ca_softmax", "sigmoid"):
    REFUSED[("attention_variant", _variant)] = (
        f"every transformers GPT-2 or GPT-NeoX computes plain softmax attention; the "
        f"{_variant!r} variant changes how scores become weights, which no class does")


def export_problems(config: GPT2Config) -> list[str]:
    """One line per switch of `config` that no `transformers` class computes, naming the
    switch, its value and why; empty when `to_hf` can export the model."""
    problems = [f"{name}={getattr(config, name)!r}: {reason}"
                for (name, value), reason in REFUSED.items()
                if getattr(config, name) == value
                and (name != "rope_layout" or config.position_encoding == "rope")]
    if config.attention_window is not None:
        problems.append(f"attention_window={config.attention_window!r}: GPT-2 and GPT-NeoX "
                        "attend to every earlier key; the classes with a sliding window "
                        "(Mistral, ...) use RMSNorm and SwiGLU, and none keeps sinks")
    return problems


def hf_config(config: GPT2Config, bos_token_id: int | None = None,
              eos_token_id: int | None = None):
    """The `transformers.GPT2Config` or `GPTNeoXConfig` of the twin of a `config` model.

    pad_token_id is the config's; bos and eos are what the caller passes (the tokenizer's
    end-of-text id), None when the tokenizer has none.  Raises ValueError listing
    `export_problems`.
    """
    from transformers import GPT2Config as HFGPT2Config
    from transformers import GPTNeoXConfig

    problems = export_problems(config)
    if problems:
        raise ValueError("no transformers class computes this model:\n  " + "\n  ".join(problems))
    ids = {"bos_token_id": bos_token_id, "eos_token_id": eos_token_id,
           "pad_token_id": config.pad_token_id,
           "tie_word_embeddings": config.tie_word_embeddings}
    if config.position_encoding in ("learned", "none"):
        return HFGPT2Config(**config.hf_kwargs(), activation_function=HF_ACTIVATION_OF[config.mlp],
                            **ids)
    return GPTNeoXConfig(
        vocab_size=config.vocab_size, hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size, hidden_act=HF_ACTIVATION_OF[config.mlp],
        max_position_embeddings=config.max_position_embeddings,
        layer_norm_eps=config.layer_norm_eps, hidden_dropout=config.hidden_dropout_prob,
        attention_dropout=config.attention_probs_dropout_prob,
        initializer_range=config.initializer_range, use_parallel_residual=False,
        attention_bias=True,
        rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta,
                         "partial_rotary_factor": config.rotary_fraction}, **ids)


def with_biases(model: GPT2Model) -> dict[str, torch.Tensor]:
    """The model's state dict, with a zero bias beside every Linear and LayerNorm weight
    that has none (`bias=False`), and `output_embedding` for an untied output."""
    state = dict(model.state_dict())
    for name, module in model.named_modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.LayerNorm)) and module.bias is None:
            rows = module.weight.shape[0]
            state[f"{name}.bias"] = module.weight.new_zeros(rows)
    if model.config.position_encoding == "none":
        state["pos_embedding.weight"] = model.word_embedding.weight.new_zeros(
            model.config.max_position_embeddings, model.config.hidden_size)
    state["output_embedding"] = model.output_weight
    return state


# Our per-layer projections -> GPT-2's Conv1D modules.
GPT2_PROJECTIONS = {"attention_dense": "attn.c_proj", "interm_dense": "mlp.c_fc",
                    "out_dense": "mlp.c_proj"}


def ours_to_gpt2(state: dict[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """Our names (`with_biases`) -> a `GPT2LMHeadModel` state dict (Conv1D weights [in, out])."""
    hf = {"transformer.wte.weight": state["word_embedding.weight"],
          "transformer.wpe.weight": state["pos_embedding.weight"],
          "transformer.ln_f.weight": state["final_layer_norm.weight"],
          "transformer.ln_f.bias": state["final_layer_norm.bias"],
          "lm_head.weight": state["output_embedding"]}
    for layer in range(num_layers):
        src, dst = f"gpt_layers.{layer}.", f"transformer.h.{layer}."
        attention = [f"{src}self_attention.{part}" for part in ("query", "key", "value")]
        hf[dst + "attn.c_attn.weight"] = torch.cat(
            [state[p + ".weight"].t() for p in attention], dim=1)  # (D, 3D)
        hf[dst + "attn.c_attn.bias"] = torch.cat([state[p + ".bias"] for p in attention])
        for ours, theirs in GPT2_PROJECTIONS.items():
            hf[f"{dst}{theirs}.weight"] = state[f"{src}{ours}.weight"].t()  # (in, out)
            hf[f"{dst}{theirs}.bias"] = state[f"{src}{ours}.bias"]
        for ours, theirs in (("attention_layer_norm", "ln_1"), ("out_layer_norm", "ln_2")):
            for kind in ("weight", "bias"):
                hf[f"{dst}{theirs}.{kind}"] = state[f"{src}{ours}.{kind}"]
    return hf


# Our per-layer names <-> GPT-NeoX's, for everything but the fused query_key_value.
NEOX_LAYER = {"attention_layer_norm": "input_layernorm",
              "out_layer_norm": "post_attention_layernorm",
              "attention_dense": "attention.dense", "interm_dense": "mlp.dense_h_to_4h",
              "out_dense": "mlp.dense_4h_to_h"}


def ours_to_neox(state: dict[str, torch.Tensor], config: GPT2Config) -> dict[str, torch.Tensor]:
    """Our names (`with_biases`) -> a `GPTNeoXForCausalLM` state dict."""
    H, d, D = config.num_attention_heads, config.head_size, config.hidden_size
    hf = {"gpt_neox.embed_in.weight": state["word_embedding.weight"],
          "gpt_neox.final_layer_norm.weight": state["final_layer_norm.weight"],
          "gpt_neox.final_layer_norm.bias": state["final_layer_norm.bias"],
          "lm_head.weight": state["output_embedding"]}
    for layer in range(config.num_hidden_layers):
        src, dst = f"gpt_layers.{layer}.", f"gpt_neox.layers.{layer}."
        parts = [f"{src}self_attention.{part}" for part in ("query", "key", "value")]
        weights = [state[p + ".weight"].reshape(H, d, D) for p in parts]  # 3 x (H, d, D)
        biases = [state[p + ".bias"].reshape(H, d) for p in parts]  # 3 x (H, d)
        hf[dst + "attention.query_key_value.weight"] = torch.cat(weights, 1).reshape(3 * D, D)
        hf[dst + "attention.query_key_value.bias"] = torch.cat(biases, 1).reshape(3 * D)
        for ours, theirs in NEOX_LAYER.items():
            for kind in ("weight", "bias"):
                hf[f"{dst}{theirs}.{kind}"] = state[f"{src}{ours}.{kind}"]
    return hf


def to_hf(model: GPT2Model, bos_token_id: int | None = None,
          eos_token_id: int | None = None):
    """The `transformers.PreTrainedModel` that computes `model`'s function (see the module
    doc), on the CPU in eval mode, with copies of the weights in their dtype.  Its logits
    equal ours to 1e-5 in fp32.  bos/eos: the tokenizer's end-of-text id (None: none).
    Raises ValueError naming every switch that no class computes."""
    from transformers import GPT2LMHeadModel, GPTNeoXForCausalLM

    config = model.config
    target = hf_config(config, bos_token_id, eos_token_id)
    state = {name: tensor.detach().cpu().clone()
             for name, tensor in with_biases(model).items()}
    if target.model_type == "gpt2":
        twin, weights = GPT2LMHeadModel(target), ours_to_gpt2(state, config.num_hidden_layers)
    else:
        twin, weights = GPTNeoXForCausalLM(target), ours_to_neox(state, config)
    if config.tie_word_embeddings:
        weights.pop("lm_head.weight")
    missing, unexpected = twin.load_state_dict(weights, strict=False)
    tied = ["lm_head.weight"] if config.tie_word_embeddings else []
    if sorted(missing) != tied or unexpected:
        raise ValueError(f"export to {type(twin).__name__}: missing {missing}, "
                         f"unexpected {unexpected}")
    return twin.to(model.dtype).eval()


def config_from_neox(neox: Any, **overrides: Any) -> GPT2Config:
    """A `position_encoding="rope"` config with the sizes of a `transformers.GPTNeoXConfig`.

    Raises ValueError for a checkpoint this model does not compute: a parallel residual
    (Pythia's), another activation than a GELU, no attention biases, or a rope
    scaling other than the default.
    """
    rope = dict(neox.rope_parameters or {})
    problems = []
    if neox.use_parallel_residual:
        problems.append("use_parallel_residual=True (this model adds attention, then the "
                        "MLP; a parallel block feeds both the same input)")
    if neox.hidden_act not in HF_ACTIVATIONS:
        problems.append(f"hidden_act={neox.hidden_act!r} (this model's MLP uses a GELU, "
                        f"one of {list(HF_ACTIVATIONS)})")
    if not neox.attention_bias:
        problems.append("attention_bias=False (this model's attention has biases)")
    if rope.get("rope_type", "default") != "default":
        problems.append(f"rope_type={rope['rope_type']!r} (this model's rotary is unscaled)")
    if problems:
        raise ValueError("GPT-NeoX checkpoint this model cannot compute: " + "; ".join(problems))
    fields = dict(vocab_size=neox.vocab_size, max_position_embeddings=neox.max_position_embeddings,
                  hidden_size=neox.hidden_size, num_hidden_layers=neox.num_hidden_layers,
                  num_attention_heads=neox.num_attention_heads,
                  intermediate_size=neox.intermediate_size, layer_norm_eps=neox.layer_norm_eps,
                  hidden_dropout_prob=neox.hidden_dropout,
                  attention_probs_dropout_prob=neox.attention_dropout,
                  pad_token_id=neox.pad_token_id, position_encoding="rope", rope_layout="half",
                  rope_theta=rope.get("rope_theta", 10000.0),
                  rotary_fraction=rope.get("partial_rotary_factor", 1.0),
                  tie_word_embeddings=bool(neox.tie_word_embeddings),
                  mlp=HF_ACTIVATIONS[neox.hidden_act])
    return GPT2Config(**{**fields, **overrides})


def neox_to_ours(hf_state: dict[str, torch.Tensor], config: GPT2Config) -> dict[str, torch.Tensor]:
    """A `GPTNeoXForCausalLM` state dict -> our names (the inverse of `ours_to_neox`)."""
    H, d, D = config.num_attention_heads, config.head_size, config.hidden_size
    ours = {"word_embedding.weight": hf_state["gpt_neox.embed_in.weight"],
            "final_layer_norm.weight": hf_state["gpt_neox.final_layer_norm.weight"],
            "final_layer_norm.bias": hf_state["gpt_neox.final_layer_norm.bias"]}
    if not config.tie_word_embeddings:
        ours["output_embedding"] = hf_state["lm_head.weight"]
    for layer in range(config.num_hidden_layers):
        src, dst = f"gpt_neox.layers.{layer}.", f"gpt_layers.{layer}."
        fused_w = hf_state[src + "attention.query_key_value.weight"].reshape(H, 3 * d, D)
        fused_b = hf_state[src + "attention.query_key_value.bias"].reshape(H, 3 * d)
        for index, part in enumerate(("query", "key", "value")):
            rows = slice(index * d, (index + 1) * d)
            ours[f"{dst}self_attention.{part}.weight"] = fused_w[:, rows].reshape(D, D)
            ours[f"{dst}self_attention.{part}.bias"] = fused_b[:, rows].reshape(D)
        for mine, theirs in NEOX_LAYER.items():
            for kind in ("weight", "bias"):
                ours[f"{dst}{mine}.{kind}"] = hf_state[f"{src}{theirs}.{kind}"]
    return ours

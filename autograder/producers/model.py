"""Producers for the model parts: attention, the layer, embed, the tied output, the whole
model, and loading Hugging Face weights.

Every module is built from the student's classes on a tiny `GPT2Config`, then all its
parameters are overwritten from a seeded generator in sorted-name order, so the weights
do not depend on construction order.  Cases that grade one function replace the other
fenced functions it calls with the trusted versions below, so one bug costs only the
cases of its own rule (the whole-model cases are integration cases and check them all).
"""

from __future__ import annotations

import math
import types
from typing import Any

import numpy as np

from autograder.producers import to_numpy


def _torch():
    import torch

    torch.set_num_threads(1)
    return torch


def _config(params: dict[str, Any]):
    from config import GPT2Config

    sizes = dict(vocab_size=61, max_position_embeddings=32, hidden_size=24,
                 num_hidden_layers=2, num_attention_heads=3, intermediate_size=96,
                 hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    sizes.update(params.get("config", {}))
    return GPT2Config(**sizes)


def _seed_parameters(module, seed: int, scale: float = 0.3) -> None:
    """Overwrite every parameter with seeded normals (layer-norm weights around 1)."""
    torch = _torch()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in sorted(module.named_parameters()):
            noise = torch.randn(parameter.shape, generator=generator) * scale
            is_norm_weight = "norm" in name and name.endswith("weight")
            parameter.copy_(noise + 1.0 if is_norm_weight else noise)


def _randn(shape, generator):
    return _torch().randn(*shape, generator=generator)


def _extended_mask(lengths: list[int], length: int):
    """Trusted additive padding mask [B, 1, 1, T_k] for rows with `lengths` real keys."""
    torch = _torch()
    mask = (torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]).float()
    return (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min


def trusted_attention(self, key, query, value, attention_mask):
    """The handout rule, for cases that grade something else."""
    torch = _torch()
    B, H, T_q, d = query.shape
    T_k = key.shape[2]
    scores = query @ key.transpose(-1, -2) / math.sqrt(d)  # (B, H, T_q, T_k)
    causal = torch.ones(T_q, T_k, dtype=torch.bool).tril(T_k - T_q)
    scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min) + attention_mask
    probs = self.dropout(torch.softmax(scores, dim=-1))
    return (probs @ value).transpose(1, 2).reshape(B, T_q, H * d)  # (B, T_q, D)


def trusted_add(self, input, output, dense_layer, dropout):
    return input + dropout(dense_layer(output))


def attention(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`CausalSelfAttention.attention` (or `.sdpa_attention`) on seeded Q, K, V.

    params: B, H, T_q, T_k, d, lengths (real keys per row, optional), seed, impl,
    grad (also return dQ, dK, dV of a seeded linear loss), dropout (p: also return a
    training-mode output "train" next to the eval one), keep_every (return every k-th
    query position only: large timed cases stay small on disk).
    """
    torch = _torch()
    from modules.attention import CausalSelfAttention

    B, H, T_q, T_k, d = (params[k] for k in ("B", "H", "T_q", "T_k", "d"))
    p = params.get("dropout", 0.0)
    config = _config({"config": {"hidden_size": H * d, "num_attention_heads": H,
                                 "attention_probs_dropout_prob": p}})
    module = CausalSelfAttention(config).eval()
    method = module.sdpa_attention if params.get("impl") == "sdpa" else module.attention
    generator = torch.Generator().manual_seed(params["seed"])
    query = _randn((B, H, T_q, d), generator).requires_grad_(params.get("grad", False))
    key = _randn((B, H, T_k, d), generator).requires_grad_(params.get("grad", False))
    value = _randn((B, H, T_k, d), generator).requires_grad_(params.get("grad", False))
    mask = _extended_mask(params.get("lengths") or [T_k] * B, T_k)
    out = method(key, query, value, mask)
    kept = out[:, :: params.get("keep_every", 1)] if type(out) is torch.Tensor else out
    result = {"out": to_numpy(kept, "attention output")}
    if params.get("grad"):
        (out * _randn(tuple(out.shape), generator)).sum().backward()
        for name, tensor in (("d_query", query), ("d_key", key), ("d_value", value)):
            result[name] = to_numpy(tensor.grad, f"gradient {name}")
    if p:
        module.train()
        torch.manual_seed(params["seed"])
        with torch.no_grad():
            result["train"] = to_numpy(method(key, query, value, mask), "training output")
    return result


class _FixedDropout:
    """A deterministic stand-in for nn.Dropout: multiplies by a fixed 0/2 mask."""

    def __init__(self, mask):
        self.mask = mask

    def __call__(self, x):
        return x * self.mask


def layer_add(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`GPT2Layer.add(input, output, dense_layer, dropout)` with a fixed-mask dropout."""
    torch = _torch()
    from modules.gpt2_layer import GPT2Layer

    config = _config(params)
    layer = GPT2Layer(config).eval()
    _seed_parameters(layer, params["seed"])
    generator = torch.Generator().manual_seed(params["seed"] + 1)
    B, T, D = params["B"], params["T"], config.hidden_size
    inner = config.intermediate_size if params.get("mlp") else D
    dense = layer.out_dense if params.get("mlp") else layer.attention_dense
    x = _randn((B, T, D), generator)
    y = _randn((B, T, inner), generator)
    mask = (torch.rand(B, T, D, generator=generator) > 0.5).float() * 2.0
    out = layer.add(x, y, dense, _FixedDropout(mask))
    return {"out": to_numpy(out, "add output")}


def layer_forward(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`GPT2Layer.forward` with trusted attention and add: eval mode, the input gradient,
    and with config dropout a training-mode output "train"."""
    torch = _torch()
    from modules.gpt2_layer import GPT2Layer

    config = _config(params)
    layer = GPT2Layer(config).eval()
    _seed_parameters(layer, params["seed"])
    layer.self_attention.attention = types.MethodType(trusted_attention, layer.self_attention)
    layer.add = types.MethodType(trusted_add, layer)
    generator = torch.Generator().manual_seed(params["seed"] + 1)
    B, T = params["B"], params["T"]
    x = _randn((B, T, config.hidden_size), generator).requires_grad_(True)
    mask = _extended_mask(params.get("lengths") or [T] * B, T)
    out = layer(x, mask)
    (out * _randn(tuple(out.shape), generator)).sum().backward()
    result = {"out": to_numpy(out, "layer output"), "d_input": to_numpy(x.grad, "input gradient")}
    if config.hidden_dropout_prob:
        layer.train()
        torch.manual_seed(params["seed"])
        with torch.no_grad():
            result["train"] = to_numpy(layer(x, mask), "layer output in training mode")
    return result


def _model(params: dict[str, Any]):
    from models.gpt2 import GPT2Model

    model = GPT2Model(_config(params))
    _seed_parameters(model, params["seed"])
    return model.eval()


def _ids(params: dict[str, Any], vocab: int):
    torch = _torch()
    generator = torch.Generator().manual_seed(params["seed"] + 2)
    B, T = params["B"], params["T"]
    ids = torch.randint(0, vocab, (B, T), generator=generator)
    lengths = params.get("lengths") or [T] * B
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()
    return ids, mask


def embed(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`GPT2Model.embed` in eval mode, with given positions, and in training mode."""
    torch = _torch()
    model = _model(params)
    ids, _ = _ids(params, model.config.vocab_size)
    result = {"eval": to_numpy(model.embed(ids), "embed output")}
    positions = torch.arange(ids.shape[1]).flip(0)[None, :].repeat(ids.shape[0], 1) + 3
    result["positions"] = to_numpy(model.embed(ids, positions), "embed with position_ids")
    if model.config.hidden_dropout_prob:
        model.train()
        torch.manual_seed(params["seed"])
        result["train"] = to_numpy(model.embed(ids), "embed output in training mode")
    return result


def output_logits(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`GPT2Model.hidden_state_to_token` and the gradient it sends to the word embedding."""
    torch = _torch()
    model = _model(params)
    generator = torch.Generator().manual_seed(params["seed"] + 1)
    hidden = _randn(tuple(params["shape"]) + (model.config.hidden_size,), generator)
    logits = model.hidden_state_to_token(hidden)
    (logits * _randn(tuple(logits.shape), generator)).sum().backward()
    grad = model.word_embedding.weight.grad
    if grad is None:
        grad = torch.zeros_like(model.word_embedding.weight)
    return {"logits": to_numpy(logits, "logits"), "d_word_embedding": to_numpy(grad, "gradient")}


def model_forward(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`GPT2Model.forward` end to end (eval), and the logits of the last real token."""
    model = _model(params)
    ids, mask = _ids(params, model.config.vocab_size)
    out = model(ids, mask)
    logits = model.hidden_state_to_token(out["last_token"])
    return {"last_hidden_state": to_numpy(out["last_hidden_state"], "last_hidden_state"),
            "last_token": to_numpy(out["last_token"], "last_token"),
            "logits": to_numpy(logits, "logits of the last token")}


def _hf_model(params: dict[str, Any]):
    """A seeded random transformers GPT2LMHeadModel of the case's sizes (trusted code)."""
    torch = _torch()
    from transformers import GPT2Config as HFConfig
    from transformers import GPT2LMHeadModel

    c = _config(params)
    hf_config = HFConfig(vocab_size=c.vocab_size, n_positions=c.max_position_embeddings,
                         n_embd=c.hidden_size, n_layer=c.num_hidden_layers,
                         n_head=c.num_attention_heads, n_inner=c.intermediate_size,
                         resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                         bos_token_id=c.vocab_size - 1, eos_token_id=c.vocab_size - 1)
    torch.manual_seed(params["seed"])
    model = GPT2LMHeadModel(hf_config)
    _seed_parameters(model, params["seed"], scale=0.4)
    return model


def hf_mapping(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`hf_to_ours` on a random Hugging Face state dict: one array per parameter of ours."""
    from models.gpt2 import hf_to_ours

    hf = _hf_model(params)
    state = {k: v.clone() for k, v in hf.transformer.state_dict().items()}
    mapped = hf_to_ours(state, hf.config.n_layer)
    if not isinstance(mapped, dict):
        raise TypeError(f"hf_to_ours must return a dict, got {type(mapped).__name__}")
    return {f"param:{name}": to_numpy(tensor, f"mapped {name}")
            for name, tensor in mapped.items() if isinstance(name, str)}


def from_pretrained(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`GPT2Model.from_pretrained(folder)` on a checkpoint written by `save_pretrained`."""
    import os
    import tempfile

    from models.gpt2 import GPT2Model

    folder = tempfile.mkdtemp(prefix="ckpt-", dir=os.environ.get("TMPDIR"))
    _hf_model(params).save_pretrained(folder)
    model = GPT2Model.from_pretrained(folder, **params.get("overrides", {})).eval()
    ids, mask = _ids(params, model.config.vocab_size)
    out = model(ids, mask)
    return {"last_hidden_state": to_numpy(out["last_hidden_state"], "last_hidden_state"),
            "logits": to_numpy(model.hidden_state_to_token(out["last_token"]), "logits")}


PRODUCERS = {"attention": attention, "layer_add": layer_add, "layer_forward": layer_forward,
             "embed": embed, "output_logits": output_logits, "model_forward": model_forward,
             "hf_mapping": hf_mapping, "from_pretrained": from_pretrained}

"""Producers for the model parts: attention, the layer, embed, the tied output, the whole
model, and loading Hugging Face weights.

Every module is built from the student's classes on a tiny `GPT2Config` that GPT-2 itself
could have (the pad id is the last token id), then each parameter is overwritten with
values that depend only on the case's seed and the parameter's own qualified name, so
neither construction order nor an extra parameter changes any other weight.  The names are
returned too (`PARAMETER_NAMES`), and the judge lists the ones the reference lacks.

A case that grades one fenced function runs it with the trusted versions of the fenced
functions it calls and of the scaffold it sits on: the layer cases use the trusted
attention, `add` and tanh GELU whatever `__init__` chose, and the pretrained-model case
loads through the trusted loader (`trusted.copy_mapped`), not the submission's
`from_pretrained`.  So one bug costs only the cases of its own rule (on Gradescope; in the
student's copy their own attention and add stand in, `trusted.solution`); the whole-model
cases are where integration is graded.
"""

from __future__ import annotations

import types
import zlib
from typing import Any

import numpy as np

from autograder.producers import NOTES, PARAMETER_NAMES, lines_array, names_array, to_numpy, trusted


def _torch():
    import torch

    torch.set_num_threads(1)
    return torch


def case_config(params: dict[str, Any]):
    """The case's tiny `GPT2Config` (params["config"] over the defaults below); its pad id
    is the last token id, as GPT-2's <|endoftext|>, so it lies inside the small vocab, and
    its context holds the case's sequences (params "T" or "T_k"), as a GPT-2 could."""
    from config import GPT2Config

    length = max(params.get("T", 0), params.get("T_k", 0))
    sizes = dict(vocab_size=61, max_position_embeddings=max(32, length), hidden_size=24,
                 num_hidden_layers=2, num_attention_heads=3, intermediate_size=96,
                 hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    sizes.update(params.get("config", {}))
    sizes.setdefault("pad_token_id", sizes["vocab_size"] - 1)  # <|endoftext|>, as in GPT-2
    return GPT2Config(**sizes)


def parameter_seed(seed: int, name: str) -> int:
    """The generator seed of parameter `name`: a stable hash of the case seed and the name."""
    return zlib.crc32(f"{seed}:{name}".encode())


def seed_parameters(module, seed: int, scale: float = 0.3) -> dict[str, np.ndarray]:
    """Overwrite every parameter with normals from its own generator (`parameter_seed`),
    layer-norm weights around 1.  Returns {PARAMETER_NAMES: the qualified names}."""
    torch = _torch()
    named = list(module.named_parameters())
    with torch.no_grad():
        for name, parameter in named:
            generator = torch.Generator().manual_seed(parameter_seed(seed, name))
            noise = torch.randn(parameter.shape, generator=generator) * scale
            is_norm_weight = "norm" in name and name.endswith("weight")
            parameter.copy_(noise + 1.0 if is_norm_weight else noise)
    return {PARAMETER_NAMES: names_array([name for name, _ in named])}


def _randn(shape, generator):
    return _torch().randn(*shape, generator=generator)


def _through_the_fused_kernel(method, *args):
    """`method(*args)`, refused unless it called `scaled_dot_product_attention`: the fused
    part grades the kernel's use, and the eager `attention` (solved when the model part is
    not in the assignment) computes the same values."""
    torch = _torch()
    kernel = torch.nn.functional.scaled_dot_product_attention

    class FusedCalls(torch.overrides.TorchFunctionMode):
        calls = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func is kernel:
                FusedCalls.calls += 1
            return func(*args, **(kwargs or {}))

    with FusedCalls():
        out = method(*args)
    if not FusedCalls.calls:
        raise ValueError("sdpa_attention never called "
                         "torch.nn.functional.scaled_dot_product_attention (handout 7.1)")
    return out


def attention(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`CausalSelfAttention.attention` (or `.sdpa_attention`) on seeded Q, K, V.

    params: B, H, T_q, T_k, d, lengths (real keys per row, optional), seed, impl,
    grad (also return dQ, dK, dV of a seeded linear loss), dropout (p: values are one-hot,
    V[b, h, j] = e_j with d == T_k, so that each output row is the probabilities; also
    return the training-mode output "train", whose every entry must be 0 or the eval
    probability / (1 - p) whatever the draws), keep_every (return every k-th query
    position only: large timed cases stay small on disk).
    """
    torch = _torch()
    from modules.attention import CausalSelfAttention

    B, H, T_q, T_k, d = (params[k] for k in ("B", "H", "T_q", "T_k", "d"))
    p = params.get("dropout", 0.0)
    config = case_config({"T_k": T_k, "config": {"hidden_size": H * d, "num_attention_heads": H,
                                                 "attention_probs_dropout_prob": p}})
    module = CausalSelfAttention(config).eval()
    method = module.sdpa_attention if params.get("impl") == "sdpa" else module.attention
    generator = torch.Generator().manual_seed(params["seed"])
    query = _randn((B, H, T_q, d), generator).requires_grad_(params.get("grad", False))
    key = _randn((B, H, T_k, d), generator).requires_grad_(params.get("grad", False))
    value = _randn((B, H, T_k, d), generator).requires_grad_(params.get("grad", False))
    if p:
        if d != T_k:
            raise ValueError(f"a dropout case needs d == T_k for one-hot values, got d={d}, "
                             f"T_k={T_k}")
        value = torch.eye(T_k).expand(B, H, T_k, T_k).clone()  # (B, H, T_k, d): row j is e_j
    mask = trusted.extended_mask(params.get("lengths") or [T_k] * B, T_k)
    if params.get("impl") == "sdpa":
        out = _through_the_fused_kernel(method, key, query, value, mask)
    else:
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


def layer_add(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`GPT2Layer.add(input, output, dense_layer, dropout)` with a fixed-mask dropout."""
    torch = _torch()
    from modules.gpt2_layer import GPT2Layer

    config = case_config(params)
    layer = GPT2Layer(config).eval()
    names = seed_parameters(layer, params["seed"])
    generator = torch.Generator().manual_seed(params["seed"] + 1)
    B, T, D = params["B"], params["T"], config.hidden_size
    inner = config.intermediate_size if params.get("mlp") else D
    dense = layer.out_dense if params.get("mlp") else layer.attention_dense
    x = _randn((B, T, D), generator)
    y = _randn((B, T, inner), generator)
    mask = (torch.rand(B, T, D, generator=generator) > 0.5).float() * 2.0
    out = layer.add(x, y, dense, trusted.fixed_dropout(mask))
    return {"out": to_numpy(out, "add output"), **names}


def layer_forward(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`GPT2Layer.forward` with the trusted attention, add and tanh GELU (`interm_af`;
    in the student's copy their own attention and add stand in, `trusted.solution`), each
    accepting the extra defaulted arguments the student's own version takes
    (`trusted.stand_in`): eval mode and the input gradient; with params["dropout"] also
    "train", the training-mode output with fixed-mask residual dropouts
    (`attention_dropout`, `out_dropout`: 0 or 1/(1-p) per element), judged by value."""
    torch = _torch()
    from modules.gpt2_layer import GPT2Layer

    config = case_config(params)
    layer = GPT2Layer(config).eval()
    names = seed_parameters(layer, params["seed"])
    notes = []
    for owner, name, trusted_name in ((layer.self_attention, "attention", "attention"),
                                      (layer, "add", "add")):
        function, note = trusted.stand_in(trusted_name, getattr(type(owner), name))
        setattr(owner, name, types.MethodType(function, owner))
        notes += [note] if note else []
    layer.interm_af = trusted.gelu_tanh()
    generator = torch.Generator().manual_seed(params["seed"] + 1)
    B, T = params["B"], params["T"]
    x = _randn((B, T, config.hidden_size), generator).requires_grad_(True)
    mask = trusted.extended_mask(params.get("lengths") or [T] * B, T)
    out = layer(x, mask)
    (out * _randn(tuple(out.shape), generator)).sum().backward()
    result = {"out": to_numpy(out, "layer output"), "d_input": to_numpy(x.grad, "input gradient"),
              **names}
    if params.get("dropout"):
        keep = 1.0 - params["dropout"]
        for name in ("attention_dropout", "out_dropout"):
            drop = (torch.rand(B, T, config.hidden_size, generator=generator) < keep) / keep
            setattr(layer, name, trusted.fixed_dropout(drop))
        with torch.no_grad():
            result["train"] = to_numpy(layer.train()(x, mask), "layer output in training mode")
    if notes:
        result[NOTES] = lines_array(notes)
    return result


def _model(params: dict[str, Any]):
    """The student's GPT2Model on the case's config, seeded; and its parameter names."""
    from models.gpt2 import GPT2Model

    model = GPT2Model(case_config(params))
    names = seed_parameters(model, params["seed"])
    return model.eval(), names


def _ids(params: dict[str, Any], vocab: int):
    torch = _torch()
    generator = torch.Generator().manual_seed(params["seed"] + 2)
    B, T = params["B"], params["T"]
    ids = torch.randint(0, vocab, (B, T), generator=generator)
    lengths = params.get("lengths") or [T] * B
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()
    return ids, mask


def embed(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`GPT2Model.embed`: with `position_ids` (params["position_ids"]) only the output for
    given positions [B, T] (reversed, offset by 3); otherwise `embed(ids)` in eval mode and,
    with config dropout, in training mode."""
    torch = _torch()
    model, names = _model(params)
    ids, _ = _ids(params, model.config.vocab_size)
    if params.get("position_ids"):
        positions = torch.arange(ids.shape[1]).flip(0)[None, :].repeat(ids.shape[0], 1) + 3
        return {"positions": to_numpy(model.embed(ids, positions), "embed with position_ids"),
                **names}
    result = {"eval": to_numpy(model.embed(ids), "embed output"), **names}
    if model.config.hidden_dropout_prob:
        model.train()
        torch.manual_seed(params["seed"])
        result["train"] = to_numpy(model.embed(ids), "embed output in training mode")
    return result


def output_logits(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`GPT2Model.hidden_state_to_token` and the gradient it sends to the word embedding."""
    torch = _torch()
    model, names = _model(params)
    generator = torch.Generator().manual_seed(params["seed"] + 1)
    hidden = _randn(tuple(params["shape"]) + (model.config.hidden_size,), generator)
    logits = model.hidden_state_to_token(hidden)
    (logits * _randn(tuple(logits.shape), generator)).sum().backward()
    grad = model.word_embedding.weight.grad
    if grad is None:
        grad = torch.zeros_like(model.word_embedding.weight)
    return {"logits": to_numpy(logits, "logits"), "d_word_embedding": to_numpy(grad, "gradient"),
            **names}


def _forward(model, params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`GPT2Model.forward` on the case's ids and mask (eval): the states and last logits."""
    ids, mask = _ids(params, model.config.vocab_size)
    out = model(ids, mask)
    logits = model.hidden_state_to_token(out["last_token"])
    return {"last_hidden_state": to_numpy(out["last_hidden_state"], "last_hidden_state"),
            "last_token": to_numpy(out["last_token"], "last_token"),
            "logits": to_numpy(logits, "logits of the last token")}


def model_forward(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`GPT2Model.forward` end to end (eval), and the logits of the last real token."""
    model, names = _model(params)
    return {**_forward(model, params), **names}


def _hf_model(params: dict[str, Any]) -> tuple[types.SimpleNamespace, dict[str, Any]]:
    """(the config, the `transformer.state_dict()`) of a seeded random Hugging Face
    `GPT2LMHeadModel` of the case's sizes, built without importing transformers (trusted
    code; it costs the child seconds).  Each tensor has the name and the Conv1D [in, out]
    shape of Hugging Face's GPT-2 and the values `seed_parameters(model, seed, scale=0.4)`
    gives the real model (whose names carry the "transformer." prefix; its tied `lm_head`
    adds none)."""
    torch = _torch()
    c = case_config(params)
    D, inner, V, P = c.hidden_size, c.intermediate_size, c.vocab_size, c.max_position_embeddings
    config = types.SimpleNamespace(
        vocab_size=V, n_positions=P, n_embd=D, n_layer=c.num_hidden_layers,
        n_head=c.num_attention_heads, n_inner=inner, layer_norm_epsilon=1e-5,
        resid_pdrop=0.0, attn_pdrop=0.0, activation_function="gelu_new")
    shapes = {"wte.weight": (V, D), "wpe.weight": (P, D)}
    for i in range(c.num_hidden_layers):
        shapes.update({f"h.{i}.ln_1.weight": (D,), f"h.{i}.ln_1.bias": (D,),
                       f"h.{i}.attn.c_attn.weight": (D, 3 * D), f"h.{i}.attn.c_attn.bias": (3 * D,),
                       f"h.{i}.attn.c_proj.weight": (D, D), f"h.{i}.attn.c_proj.bias": (D,),
                       f"h.{i}.ln_2.weight": (D,), f"h.{i}.ln_2.bias": (D,),
                       f"h.{i}.mlp.c_fc.weight": (D, inner), f"h.{i}.mlp.c_fc.bias": (inner,),
                       f"h.{i}.mlp.c_proj.weight": (inner, D), f"h.{i}.mlp.c_proj.bias": (D,)})
    shapes.update({"ln_f.weight": (D,), "ln_f.bias": (D,)})
    state = {}
    for name, shape in shapes.items():
        generator = torch.Generator().manual_seed(parameter_seed(params["seed"], f"transformer.{name}"))
        state[name] = torch.randn(shape, generator=generator) * 0.4
    return config, state


def hf_mapping(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`hf_to_ours` on a random Hugging Face state dict: one array per parameter of ours."""
    from models.gpt2 import hf_to_ours

    config, state = _hf_model(params)
    mapped = hf_to_ours(state, config.n_layer)
    if not isinstance(mapped, dict):
        raise TypeError(f"hf_to_ours must return a dict, got {type(mapped).__name__}")
    return {f"param:{name}": to_numpy(tensor, f"mapped {name}")
            for name, tensor in mapped.items() if isinstance(name, str)}


def from_pretrained(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """Pretrained weights end to end: the student's `hf_to_ours` maps a random Hugging Face
    GPT-2 onto the student's `GPT2Model` (trusted config and copy, as in the handout's
    `from_pretrained`), then `forward` (eval)."""
    from config import GPT2Config
    from models.gpt2 import GPT2Model, hf_to_ours

    config, state = _hf_model(params)
    model = GPT2Model(GPT2Config.from_hf(config, **params.get("overrides", {})))
    names = seed_parameters(model, params["seed"])
    trusted.copy_mapped(model, hf_to_ours(state, config.n_layer))
    result = _forward(model.eval(), params)
    return {"last_hidden_state": result["last_hidden_state"], "logits": result["logits"],
            **names}


PRODUCERS = {"attention": attention, "layer_add": layer_add, "layer_forward": layer_forward,
             "embed": embed, "output_logits": output_logits, "model_forward": model_forward,
             "hf_mapping": hf_mapping, "from_pretrained": from_pretrained}

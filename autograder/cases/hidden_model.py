"""Hidden cases for the model parts (staff-only: never in the handout).

Shapes are tiny so that a whole grading run takes seconds; the rules a case checks are
listed with it (see `autograder.case.RULES`), and the mutants in `tests/` prove them.
"""

from __future__ import annotations

from autograder.case import ATTENTION_RULES, MODEL_RULES, Case
from autograder.cases.visible import (
    ADD,
    ATTENTION,
    EMBED,
    FORWARD,
    HF_TO_OURS,
    NO_PAD,
    OUTPUT,
    SDPA,
    WHOLE_MODEL,
)

SMALL = {"hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 128,
         "num_hidden_layers": 3}


def _attention(name, points, rules, title, **params):
    return Case(f"attention/{name}", "attention", params, points, rules, title,
                grades=(ATTENTION,))


def _sdpa(name, title, **params):
    return Case(f"sdpa/{name}", "attention", {**params, "impl": "sdpa"}, 2.0, ("sdpa",), title,
                grades=(SDPA,))


CASES = [
    _attention("causal", 3.0, NO_PAD, "causal mask, no padding (B=2, H=2, T=5, d=4)",
               B=2, H=2, T_q=5, T_k=5, d=4, seed=1),
    _attention("padded", 3.0, ATTENTION_RULES, "right padding: rows of 6, 3 and 1 real keys",
               B=3, H=2, T_q=6, T_k=6, d=4, lengths=[6, 3, 1], seed=2),
    _attention("kv_offset", 3.0, ATTENTION_RULES + ("attn_kv_offset",),
               "2 new queries over 7 keys (KV cache): causal offset and padding",
               B=2, H=3, T_q=2, T_k=7, d=4, lengths=[7, 5], seed=3),
    _attention("gradients", 3.0, ATTENTION_RULES, "gradients dQ, dK, dV through the attention",
               B=2, H=3, T_q=5, T_k=5, d=8, lengths=[5, 4], grad=True, seed=4),
    _attention("wide", 3.0, ATTENTION_RULES, "4 heads of 16, 16 positions, padding",
               B=1, H=4, T_q=16, T_k=16, d=16, lengths=[11], seed=5),
    Case("attention/dropout", "attention",
         {"B": 2, "H": 4, "T_q": 8, "T_k": 8, "d": 8, "dropout": 0.5, "seed": 6}, 3.0,
         NO_PAD + ("attn_dropout",),
         "dropout on the probabilities in training, off in eval (one-hot values: each "
         "output is a probability, 0 or p/(1-dropout))",
         dropout_keys=("train",), extra={"p": 0.5, "eval_key": "out"},
         grades=(ATTENTION,)),
    Case("attention/speed", "attention",
         {"B": 4, "H": 8, "T_q": 256, "T_k": 256, "d": 64, "lengths": [256, 200, 130, 7],
          "keep_every": 32, "seed": 7}, 2.0, ATTENTION_RULES,
         "vectorised: B=4, H=8, T=256, d=64 within 2 s (timed by the grader)",
         time_limit_s=2.0, atol=1e-4, grades=(ATTENTION,)),
    _sdpa("causal", "fused path, causal, no padding", B=2, H=2, T_q=5, T_k=5, d=4, seed=11),
    _sdpa("padded", "fused path, right padding", B=3, H=2, T_q=6, T_k=6, d=4,
          lengths=[6, 3, 1], seed=12),
    _sdpa("kv_offset", "fused path, 2 queries over 7 keys", B=2, H=3, T_q=2, T_k=7, d=4,
          lengths=[7, 5], seed=13),
    Case("layer/add_attention", "layer_add", {"B": 2, "T": 4, "seed": 21}, 3.0, ("add",),
         "add: dropout on the projected branch only, no layer norm", grades=(ADD,)),
    Case("layer/add_mlp", "layer_add", {"B": 2, "T": 3, "mlp": True, "seed": 22}, 3.0,
         ("add",), "add: residual around the MLP projection (D_out = 4D)", grades=(ADD,)),
    Case("layer/forward", "layer_forward", {"B": 2, "T": 5, "lengths": [5, 3], "seed": 23},
         3.0, ("pre_ln", "gelu_tanh"), "forward: pre-LN attention and MLP, with padding",
         grades=(FORWARD,)),
    Case("layer/forward_wide", "layer_forward",
         {"B": 1, "T": 8, "seed": 24, "config": SMALL}, 3.0, ("pre_ln", "gelu_tanh"),
         "forward: D=32, 4 heads, and the input gradient",
         atol=1e-4, grades=(FORWARD,)),  # the input gradient reaches |45|: fp32 rounding alone is ~1e-5
    Case("layer/forward_dropout", "layer_forward",
         {"B": 2, "T": 6, "seed": 25, "dropout": 0.5}, 3.0,
         ("pre_ln", "gelu_tanh", "layer_dropout"),
         "forward in training mode: residual dropout (fixed masks) on each sub-layer's add",
         grades=(FORWARD,)),
    Case("embed/positions", "embed", {"B": 3, "T": 6, "seed": 31, "position_ids": True}, 4.0,
         ("embed", "embed_position_ids"), "embed: token + position at given position_ids",
         grades=(EMBED,)),
    Case("embed/dropout", "embed",
         {"B": 4, "T": 8, "seed": 32, "config": {"hidden_dropout_prob": 0.5}}, 4.0, ("embed",),
         "embed: dropout on the sum in training (0 or x/(1-p)), none in eval",
         dropout_keys=("train",), extra={"p": 0.5,
                                         "eval_key": "eval"},
         grades=(EMBED,)),
    Case("output/logits", "output_logits", {"shape": [2, 3], "seed": 41}, 3.0,
         ("tied_output",), "hidden_state_to_token: logits [B, T, V] and the tied gradient", grades=(OUTPUT,)),
    Case("output/last_token", "output_logits", {"shape": [4], "seed": 42}, 3.0,
         ("tied_output",), "hidden_state_to_token on [B, D]", grades=(OUTPUT,)),
    Case("model/padded", "model_forward", {"B": 3, "T": 7, "lengths": [7, 4, 1], "seed": 51},
         5.0, MODEL_RULES + ("tied_output",),
         "whole model: padded batch, last_hidden_state, last_token, logits", grades=WHOLE_MODEL),
    Case("model/three_layers", "model_forward",
         {"B": 2, "T": 9, "seed": 52, "config": SMALL}, 5.0, MODEL_RULES + ("tied_output",),
         "whole model: 3 layers, D=32, 4 heads", atol=2e-5, grades=WHOLE_MODEL),
    Case("pretrained/mapping", "hf_mapping", {"seed": 61}, 4.0, ("hf_mapping",),
         "hf_to_ours: every parameter, split and transposed", grades=(HF_TO_OURS,)),
    Case("pretrained/mapping_three_layers", "hf_mapping", {"seed": 62, "config": SMALL}, 4.0,
         ("hf_mapping",), "hf_to_ours: 3 layers, D=32", atol=0.0, rtol=0.0, grades=(HF_TO_OURS,)),
    Case("pretrained/from_pretrained", "from_pretrained",
         {"B": 2, "T": 6, "lengths": [6, 2], "seed": 63}, 6.0,
         MODEL_RULES + ("tied_output", "hf_mapping"),
         "Hugging Face weights through hf_to_ours into the whole model, then forward",
         atol=2e-5, grades=WHOLE_MODEL + (HF_TO_OURS,)),
]

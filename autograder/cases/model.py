"""The model's cases (handout 3): attention, the layer, the embeddings, the output, the whole
model and the Hugging Face mapping.

Shapes are tiny so that a whole grading run takes seconds.

The cases above the staff block ship with the handout (with their reference outputs);
the hidden cases and the mutants below it are staff-only: the release drops the block.
"""

from __future__ import annotations

from autograder.case import ATTENTION_KERNELS, Case, visible_case

ATTENTION = "modules/attention.py:CausalSelfAttention.attention"
ADD, FORWARD = "modules/gpt2_layer.py:GPT2Layer.add", "modules/gpt2_layer.py:GPT2Layer.forward"
EMBED, OUTPUT = "models/gpt2.py:GPT2Model.embed", "models/gpt2.py:GPT2Model.hidden_state_to_token"
HF_TO_OURS = "models/gpt2.py:hf_to_ours"
WHOLE_MODEL = (ATTENTION, ADD, FORWARD, EMBED, OUTPUT)
NO_PAD = ("attn_scale", "attn_mask_before_softmax", "attn_causal", "attn_heads")
ATTENTION_RULES = ("attn_scale", "attn_mask_before_softmax", "attn_causal", "attn_padding",
                   "attn_heads")
MODEL_RULES = ATTENTION_RULES + ("add", "pre_ln", "gelu_tanh", "embed", "model")

FORBIDDEN = (*ATTENTION_KERNELS, "modules.attention.visible_keys", "transformers")
RULES = {
    "attn_scale": "scores are divided by sqrt(d)",
    "attn_mask_before_softmax": "masks are added to the scores before the softmax",
    "attn_causal": "a query attends to itself and earlier keys only",
    "attn_padding": "padding keys get no attention",
    "attn_heads": "heads are merged back to [B, T, D] in order",
    "attn_kv_offset": "with a KV cache (T_q < T_k) query i sits at position i + T_k - T_q: "
                      "it attends to keys j <= i + T_k - T_q",
    "attn_dropout": "attention dropout acts on the probabilities after the softmax, in "
                    "training only: each probability becomes 0 or p / (1 - dropout); the "
                    "scores before the softmax are never dropped",
    "add": "add returns input + dropout(dense(output)), no layer norm",
    "pre_ln": "layer norm is applied to each sub-layer's input (pre-LN)",
    "layer_dropout": "forward hands attention_dropout to the attention's add and "
                     "out_dropout to the MLP's add, and drops nothing else",
    "gelu_tanh": "the MLP uses GELU with the tanh approximation (GPT-2's gelu_new): the "
                 "layer cases supply it as interm_af, the whole-model cases use the "
                 "activation your GPT2Layer.__init__ sets",
    "embed": "embed returns word_embedding[ids] + pos_embedding[positions], positions "
             "0 .. T-1 by default, then dropout on the sum",
    "embed_position_ids": "embed(input_ids, position_ids) uses the given position_ids [B, T] "
                          "instead of 0 .. T-1",
    "tied_output": "logits use the word embedding matrix (tied weights)",
    "model": "your whole model, scaffold included: embed, every layer, the final layer "
             "norm, last_token at each row's last real token",
    "hf_mapping": "Hugging Face weights map onto ours (split, transpose)",
}
CASES = [
    visible_case("attention/visible_causal", "attention",
                 {"B": 1, "H": 2, "T_q": 4, "T_k": 4, "d": 3, "seed": 101}, 2.0, NO_PAD,
                 "causal, one row, no padding", grades=(ATTENTION,)),
    visible_case("attention/visible_kv_offset", "attention",
                 {"B": 2, "H": 2, "T_q": 2, "T_k": 5, "d": 3, "lengths": [5, 4], "seed": 131}, 3.0,
                 ATTENTION_RULES + ("attn_kv_offset",),
                 "2 new queries over 5 keys (KV cache offset), a padded row", grades=(ATTENTION,)),
    visible_case("attention/visible_dropout", "attention",
                 {"B": 2, "H": 3, "T_q": 8, "T_k": 8, "d": 8, "dropout": 0.5, "seed": 132}, 3.0,
                 NO_PAD + ("attn_dropout",),
                 "dropout in training mode (one-hot values: each output is a probability, 0 or "
                 "p/(1-dropout))", dropout_keys=("train",), extra={"p": 0.5, "eval_key": "out"},
                 grades=(ATTENTION,)),
    visible_case("layer/visible_add", "layer_add", {"B": 1, "T": 3, "seed": 102}, 2.0, ("add",),
                 "add around the attention projection", grades=(ADD,)),
    visible_case("layer/visible_forward", "layer_forward",
                 {"B": 2, "T": 4, "lengths": [4, 2], "seed": 133}, 3.0, ("pre_ln", "gelu_tanh"),
                 "forward: pre-LN attention and MLP, a padded row, the input gradient",
                 grades=(FORWARD,)),
    visible_case("layer/visible_forward_dropout", "layer_forward",
                 {"B": 1, "T": 5, "dropout": 0.5, "seed": 134}, 3.0,
                 ("pre_ln", "gelu_tanh", "layer_dropout"),
                 "forward in training mode: residual dropout (fixed masks) on each add",
                 grades=(FORWARD,)),
    visible_case("embed/visible_embed", "embed", {"B": 1, "T": 4, "seed": 103}, 2.0, ("embed",),
                 "token + position embeddings, positions 0 .. T-1 (eval)", grades=(EMBED,)),
    visible_case("embed/visible_positions", "embed", {"B": 2, "T": 5, "seed": 135,
                                                      "position_ids": True}, 3.0,
                 ("embed", "embed_position_ids"), "embed at given position_ids", grades=(EMBED,)),
    visible_case("embed/visible_dropout", "embed",
                 {"B": 3, "T": 8, "seed": 136, "config": {"hidden_dropout_prob": 0.5}}, 3.0,
                 ("embed",), "dropout on the sum in training (0 or x/(1-p)), none in eval",
                 dropout_keys=("train",), extra={"p": 0.5, "eval_key": "eval"}, grades=(EMBED,)),
    visible_case("output/visible_logits", "output_logits", {"shape": [2, 2], "seed": 137}, 3.0,
                 ("tied_output",), "hidden_state_to_token: logits [B, T, V] and the tied gradient",
                 grades=(OUTPUT,)),
    visible_case("model/visible_padded", "model_forward",
                 {"B": 2, "T": 5, "lengths": [5, 3], "seed": 138}, 4.0,
                 MODEL_RULES + ("tied_output",), "whole model: a padded batch", grades=WHOLE_MODEL),
    visible_case("pretrained/visible_mapping", "hf_mapping", {"seed": 139}, 3.0, ("hf_mapping",),
                 "hf_to_ours: every parameter, split and transposed", grades=(HF_TO_OURS,)),
]

### BEGIN STAFF

SMALL = {"hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 128,
         "num_hidden_layers": 3}


def _attention(name, points, rules, title, **params):
    return Case(f"attention/{name}", "attention", params, points, rules, title,
                grades=(ATTENTION,))


CASES += [
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
         atol=1e-4, grades=(FORWARD,)),
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
# name -> (rule, file, reference text, mutated text)
MUTANTS = {
    "no_scale": (
        "attn_scale", "modules/attention.py",
        "scores = query @ key.transpose(-1, -2) / math.sqrt(d)",
        "scores = query @ key.transpose(-1, -2)"),
    "mask_after_softmax": (
        "attn_mask_before_softmax", "modules/attention.py",
        "        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)\n"
        "        scores = scores + attention_mask\n"
        "        probs = self.dropout(torch.softmax(scores, dim=-1))",
        "        probs = torch.softmax(scores, dim=-1).masked_fill(~causal, 0.0)\n"
        "        probs = self.dropout(probs * (attention_mask == 0))"),
    "no_causal_mask": (
        "attn_causal", "modules/attention.py",
        "        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)\n", ""),
    "no_kv_offset": (
        "attn_kv_offset", "modules/attention.py",
        "causal = torch.ones(T_q, T_k, dtype=torch.bool, device=query.device).tril(T_k - T_q)\n"
        "        scores = scores.masked_fill",
        "causal = torch.ones(T_q, T_k, dtype=torch.bool, device=query.device).tril()\n"
        "        scores = scores.masked_fill"),
    "layer_dropout_swapped": (
        "layer_dropout", "modules/gpt2_layer.py",
        "hidden_states = self.add(hidden_states, attended, self.attention_dense,\n"
        "                                 self.attention_dropout)",
        "hidden_states = self.add(hidden_states, attended, self.attention_dense,\n"
        "                                 self.out_dropout)"),
    "layer_norm_in_add": (
        "add", "modules/gpt2_layer.py",
        "return input + dropout(dense_layer(output))",
        "return self.out_layer_norm(input + dropout(dense_layer(output)))"),
    "post_ln": (
        "pre_ln", "modules/gpt2_layer.py",
        "        attended = self.self_attention(self.attention_layer_norm(hidden_states), "
        "attention_mask,\n                                       context)  # (B, T, D)\n"
        "        hidden_states = self.add(hidden_states, attended, self.attention_dense,\n"
        "                                 self.attention_dropout)\n"
        "        inner = self.interm_af(self.interm_dense(self.out_layer_norm(hidden_states)))"
        "  # (B, T, 4D)\n"
        "        return self.add(hidden_states, inner, self.out_dense, self.out_dropout)",
        "        attended = self.self_attention(hidden_states, attention_mask, context)\n"
        "        hidden_states = self.attention_layer_norm(self.add(\n"
        "            hidden_states, attended, self.attention_dense, self.attention_dropout))\n"
        "        inner = self.interm_af(self.interm_dense(hidden_states))\n"
        "        return self.out_layer_norm(\n"
        "            self.add(hidden_states, inner, self.out_dense, self.out_dropout))"),
    "exact_gelu": (
        "gelu_tanh", "modules/gpt2_layer.py",
        "inner = self.interm_af(self.interm_dense(", "inner = F.gelu(self.interm_dense("),
    "hf_mapping_no_transpose": (
        "hf_mapping", "models/gpt2.py",
        'ours[f"{mine}self_attention.{name}.weight"] = weight.t()',
        'ours[f"{mine}self_attention.{name}.weight"] = weight'),
    "embed_without_positions": (
        "embed", "models/gpt2.py",
        "embeddings = self.word_embedding(input_ids) + self.pos_embedding(position_ids)",
        "embeddings = self.word_embedding(input_ids)"),
}
### END STAFF

"""Visible cases: shipped with the handout, with their reference outputs, so that
`python -m autograder check` shows a student the same machinery the grader uses.

Every fenced function has at least one visible case and every rule of a case is checked by
some visible case (the KV-cache offset, padding, dropout in training mode, weight decay
after the update, `correct_bias=False`, ...); visible points are at least 30% of each
part.  Hidden cases (`hidden_*.py`) test the same rules on other shapes and seeds, and
reuse the builders below.
"""

from __future__ import annotations

from autograder.case import ATTENTION_RULES, MODEL_RULES, Case

ATTENTION = "modules/attention.py:CausalSelfAttention.attention"
SDPA = "modules/attention.py:CausalSelfAttention.sdpa_attention"
ADD, FORWARD = "modules/gpt2_layer.py:GPT2Layer.add", "modules/gpt2_layer.py:GPT2Layer.forward"
EMBED, OUTPUT = "models/gpt2.py:GPT2Model.embed", "models/gpt2.py:GPT2Model.hidden_state_to_token"
HF_TO_OURS = "models/gpt2.py:hf_to_ours"
WHOLE_MODEL = (ATTENTION, ADD, FORWARD, EMBED, OUTPUT)
NO_PAD = ("attn_scale", "attn_mask_before_softmax", "attn_causal", "attn_heads")
SENTIMENT = "classifier.py:GPT2SentimentClassifier.forward"
CLOZE = "paraphrase_detection.py:ParaphraseGPT.forward"
SAMPLE = "models/generate.py:sample_next"
# producer -> the fenced functions of bpe.py it grades
BPE_GRADES = {"bpe_count_pairs": ("count_pairs",), "bpe_merge_ids": ("merge_ids",),
              "bpe_update_pair_counts": ("update_pair_counts",), "bpe_pair_key": ("pair_key",),
              "bpe_train": ("count_pairs", "merge_ids", "update_pair_counts", "pair_key"),
              "bpe_encode": ("encode_word",)}
BPE_TRAINING = ("bpe_count", "bpe_merge", "bpe_ties")


def adamw_hyper(lr=0.01, betas=(0.9, 0.999), eps=1e-10, weight_decay=0.0, correct_bias=True):
    """One parameter group's hyper-parameters, as the `adamw` producer reads them."""
    return {"lr": lr, "betas": list(betas), "eps": eps, "weight_decay": weight_decay,
            "correct_bias": correct_bias}


def adamw_rules(*groups) -> tuple[str, ...]:
    """The rules an AdamW run with these groups depends on: eps placement only shows at an
    eps far above 1e-10 with bias correction."""
    rules = ["adam_moments"]
    rules += ["bias_correction"] if any(g["correct_bias"] for g in groups) else []
    rules += ["weight_decay"] if any(g["weight_decay"] for g in groups) else []
    rules += ["adam_eps"] if any(g["eps"] > 1e-10 and g["correct_bias"] for g in groups) else []
    return tuple(rules)


def adamw_case(name, title, groups, points, shapes=((3, 4), (5,)), steps=5, frozen=(), seed=0,
               visibility="after_due_date"):
    params = {"shapes": [list(s) for s in shapes], "steps": steps, "seed": seed,
              "groups": groups, "frozen": list(frozen)}
    return Case(f"optimizer/{name}", "adamw", params, points, adamw_rules(*groups),
                f"AdamW: {title}", visibility=visibility, atol=1e-6,
                grades=("optimizer.py:AdamW.step",))


NEWTON_SCHULZ = "optimizer.py:newton_schulz"
MUON_STEP, SHAMPOO_STEP = "optimizer.py:Muon.step", "optimizer.py:Shampoo.step"
QUINTIC = [3.4445, -4.7750, 2.0315]  # Muon's default Newton-Schulz coefficients


def newton_schulz_case(name, title, points, rows, cols, scale=1.0, steps=5,
                       coefficients=QUINTIC, eps=1e-7, seed=0, visibility="after_due_date"):
    """newton_schulz of a seeded float64 [rows, cols] times `scale`; a scale below
    eps / (rows * cols) gives a matrix whose norm is below eps, divided by eps, not by its
    norm."""
    params = {"rows": rows, "cols": cols, "scale": scale, "steps": steps,
              "coefficients": list(coefficients), "eps": eps, "seed": seed}
    below_eps = scale < eps / (rows * cols)
    rules = ("ns_eps" if below_eps else "ns_normalize", "ns_iteration")
    return Case(f"preconditioned/{name}", "newton_schulz", params, points, rules,
                f"newton_schulz: {title}", visibility=visibility, atol=1e-8, rtol=1e-8,
                grades=(NEWTON_SCHULZ,))


def muon_hyper(lr=0.02, momentum=0.95, nesterov=True, ns_steps=5, ns_coefficients=QUINTIC,
               eps=1e-7, weight_decay=0.0, adjust_lr_fn=None):
    """One Muon parameter group's hyper-parameters, as the `muon` producer reads them."""
    return {"lr": lr, "momentum": momentum, "nesterov": nesterov, "ns_steps": ns_steps,
            "ns_coefficients": list(ns_coefficients), "eps": eps,
            "weight_decay": weight_decay, "adjust_lr_fn": adjust_lr_fn}


def shampoo_hyper(lr=0.05, beta2=0.9, eps=1e-4, update_every=1, momentum=0.0,
                  weight_decay=0.0):
    """One Shampoo parameter group's hyper-parameters, as the `shampoo` producer reads them."""
    return {"lr": lr, "beta2": beta2, "eps": eps, "update_every": update_every,
            "momentum": momentum, "weight_decay": weight_decay}


def muon_rules(groups, shapes) -> tuple[str, ...]:
    """The rules a Muon run depends on (over two or more steps, where the momentum shows
    through the orthogonalisation): the original lr adjustment only shows on a non-square
    matrix of a group that uses it."""
    shapes_of = [[s for i, s in enumerate(shapes) if i % len(groups) == g]
                 for g in range(len(groups))]
    rules = ["muon_momentum"]
    rules += ["muon_nesterov"] if any(g["nesterov"] for g in groups) else []
    rules += ["muon_lr_original"] if any(
        g["adjust_lr_fn"] in (None, "original") and any(r != c for r, c in own)
        for g, own in zip(groups, shapes_of, strict=True)) else []
    rules += ["muon_lr_rms"] if any(g["adjust_lr_fn"] == "match_rms_adamw"
                                    for g in groups) else []
    rules += ["muon_weight_decay"] if any(g["weight_decay"] for g in groups) else []
    return tuple(rules)


def shampoo_rules(groups) -> tuple[str, ...]:
    """The rules a Shampoo run of two or more steps depends on."""
    rules = ["shampoo_factors", "shampoo_roots"]
    rules += ["shampoo_update_every"] if any(g["update_every"] > 1 for g in groups) else []
    rules += ["shampoo_momentum"] if any(g["momentum"] for g in groups) else []
    rules += ["shampoo_weight_decay"] if any(g["weight_decay"] for g in groups) else []
    return tuple(rules)


def preconditioned_case(name, title, optimizer, groups, points, shapes=((4, 6),), steps=3,
                        frozen=(), seed=0, visibility="after_due_date"):
    """`steps` (two or more) steps of Muon or Shampoo (`optimizer`) on seeded float64
    parameters of `shapes`, parameter i in group i % len(groups)."""
    params = {"shapes": [list(s) for s in shapes], "steps": steps, "seed": seed,
              "groups": groups, "frozen": list(frozen)}
    rules = muon_rules(groups, shapes) if optimizer == "muon" else shampoo_rules(groups)
    return Case(f"preconditioned/{name}", optimizer, params, points, rules,
                f"{optimizer.capitalize()}: {title}", visibility=visibility, atol=1e-8,
                rtol=1e-8, grades=(MUON_STEP if optimizer == "muon" else SHAMPOO_STEP,))


def bpe_case(name, producer, params, points, rules, title, visibility="after_due_date"):
    """Token ids are integers, so every bpe comparison is exact."""
    return Case(f"bpe/{name}", producer, params, points, rules, f"bpe: {title}",
                visibility=visibility, atol=0.0, rtol=0.0,
                grades=tuple(f"bpe.py:{f}" for f in BPE_GRADES[producer]))


def sample_case(name, title, rules, points=2.0, visibility="after_due_date", **params):
    params = {"B": 4, "V": 12, "scale": 2.0, "draws": 6, **params}
    return Case(f"sampling/{name}", "sample_next", params, points, rules,
                f"sample_next: {title}", visibility=visibility, atol=0.0, rtol=0.0,
                grades=(SAMPLE,))


def _visible(name, producer, params, points, rules, title, **options):
    return Case(name, producer, params, points, rules, f"visible: {title}",
                visibility="visible", **options)


MODEL = [
    _visible("attention/visible_causal", "attention",
             {"B": 1, "H": 2, "T_q": 4, "T_k": 4, "d": 3, "seed": 101}, 2.0, NO_PAD,
             "causal, one row, no padding", grades=(ATTENTION,)),
    _visible("attention/visible_kv_offset", "attention",
             {"B": 2, "H": 2, "T_q": 2, "T_k": 5, "d": 3, "lengths": [5, 4], "seed": 131}, 3.0,
             ATTENTION_RULES + ("attn_kv_offset",),
             "2 new queries over 5 keys (KV cache offset), a padded row", grades=(ATTENTION,)),
    _visible("attention/visible_dropout", "attention",
             {"B": 2, "H": 3, "T_q": 8, "T_k": 8, "d": 8, "dropout": 0.5, "seed": 132}, 3.0,
             NO_PAD + ("attn_dropout",),
             "dropout in training mode (one-hot values: each output is a probability, 0 or "
             "p/(1-dropout))", dropout_keys=("train",), extra={"p": 0.5, "eval_key": "out"},
             grades=(ATTENTION,)),
    _visible("layer/visible_add", "layer_add", {"B": 1, "T": 3, "seed": 102}, 2.0, ("add",),
             "add around the attention projection", grades=(ADD,)),
    _visible("layer/visible_forward", "layer_forward",
             {"B": 2, "T": 4, "lengths": [4, 2], "seed": 133}, 3.0, ("pre_ln", "gelu_tanh"),
             "forward: pre-LN attention and MLP, a padded row, the input gradient",
             grades=(FORWARD,)),
    _visible("layer/visible_forward_dropout", "layer_forward",
             {"B": 1, "T": 5, "dropout": 0.5, "seed": 134}, 3.0,
             ("pre_ln", "gelu_tanh", "layer_dropout"),
             "forward in training mode: residual dropout (fixed masks) on each add",
             grades=(FORWARD,)),
    _visible("embed/visible_embed", "embed", {"B": 1, "T": 4, "seed": 103}, 2.0, ("embed",),
             "token + position embeddings, positions 0 .. T-1 (eval)", grades=(EMBED,)),
    _visible("embed/visible_positions", "embed", {"B": 2, "T": 5, "seed": 135,
                                                  "position_ids": True}, 3.0,
             ("embed", "embed_position_ids"), "embed at given position_ids", grades=(EMBED,)),
    _visible("embed/visible_dropout", "embed",
             {"B": 3, "T": 8, "seed": 136, "config": {"hidden_dropout_prob": 0.5}}, 3.0,
             ("embed",), "dropout on the sum in training (0 or x/(1-p)), none in eval",
             dropout_keys=("train",), extra={"p": 0.5, "eval_key": "eval"}, grades=(EMBED,)),
    _visible("output/visible_logits", "output_logits", {"shape": [2, 2], "seed": 137}, 3.0,
             ("tied_output",), "hidden_state_to_token: logits [B, T, V] and the tied gradient",
             grades=(OUTPUT,)),
    _visible("model/visible_padded", "model_forward",
             {"B": 2, "T": 5, "lengths": [5, 3], "seed": 138}, 4.0,
             MODEL_RULES + ("tied_output",), "whole model: a padded batch", grades=WHOLE_MODEL),
    _visible("pretrained/visible_mapping", "hf_mapping", {"seed": 139}, 3.0, ("hf_mapping",),
             "hf_to_ours: every parameter, split and transposed", grades=(HF_TO_OURS,)),
]
SDPA_CASES = [
    _visible("sdpa/visible_kv_offset", "attention",
             {"B": 2, "H": 2, "T_q": 2, "T_k": 5, "d": 3, "lengths": [5, 3], "impl": "sdpa",
              "seed": 140}, 3.0, ("sdpa",), "fused path, 2 queries over 5 keys, padding",
             grades=(SDPA,)),
]
OPTIMIZER = [
    adamw_case("visible_adamw", "three steps, bias correction", [adamw_hyper()], 2.0,
               shapes=((2, 3),), steps=3, seed=104, visibility="visible"),
    adamw_case("visible_no_bias_correction", "correct_bias=False",
               [adamw_hyper(correct_bias=False)], 2.0, shapes=((3,),), steps=3, seed=141,
               visibility="visible"),
    adamw_case("visible_weight_decay", "weight decay after the update",
               [adamw_hyper(lr=0.1, weight_decay=0.5)], 2.0, shapes=((2, 2),), steps=3,
               seed=142, visibility="visible"),
    adamw_case("visible_eps_placement", "eps added to sqrt(v) (eps=0.01)",
               [adamw_hyper(eps=1e-2)], 2.0, shapes=((4,),), steps=3, seed=143,
               visibility="visible"),
]
TOKENIZER = [
    bpe_case("visible_count_pairs", "bpe_count_pairs",
             {"words": [[104, 105], [104, 105, 104]], "freqs": [3, 2]}, 2.0, ("bpe_count",),
             "visible: count_pairs on the docstring's example", visibility="visible"),
    bpe_case("visible_merge_ids", "bpe_merge_ids",
             {"examples": [[[1, 2, 3, 1, 2], [1, 2], 7], [[5, 5, 5], [5, 5], 9],
                           [[4], [4, 4], 9]]}, 2.0, ("bpe_merge",),
             "visible: merge_ids on the docstring's examples", visibility="visible"),
    bpe_case("visible_update_pair_counts", "bpe_update_pair_counts",
             {"words": [[104, 105], [104, 105, 104]], "freqs": [3, 2], "w": 1,
              "pairs": [[104, 105, 5, [0, 1]], [105, 104, 2, [1]]], "new_ids": [256, 104]},
             2.0, ("bpe_count",),
             "visible: update_pair_counts on the docstring's example", visibility="visible"),
    bpe_case("visible_pair_key", "bpe_pair_key",
             {"items": [[9, "s", "t"], [9, "e", "s"], [9, "ab", "c"], [9, "a", "bc"],
                        [10, "a", "a"], [9, "z", "z"]]}, 2.0, ("bpe_ties",),
             "visible: pair_key on the docstring's examples", visibility="visible"),
    bpe_case("visible_train", "bpe_train",
             {"corpus": "aaa aa ab ab<|endoftext|>ba ab", "vocab_size": 256 + 1 + 4,
              "special_tokens": ["<|endoftext|>"]}, 2.0, BPE_TRAINING,
             "visible: train_bpe on a small corpus with a special token", visibility="visible"),
    bpe_case("visible_encode", "bpe_encode",
             {"merges": [["a", "b"], ["b", "c"], ["ab", "c"], [" ", "a"]],
              "special_tokens": ["<|endoftext|>"], "texts": ["abc", "<|endoftext|>bc abc", ""]},
             2.0, ("bpe_encode",), "visible: encode/decode, the lowest rank first",
             visibility="visible"),
]
TASKS = [
    _visible("sentiment/visible_padded", "sentiment_head",
             {"B": 2, "T": 4, "lengths": [4, 2], "num_labels": 3, "seed": 153}, 2.0,
             ("sentiment_head",), "sentiment from the last real token of each row",
             grades=(SENTIMENT,)),
    _visible("sentiment/visible_dropout", "sentiment_head",
             {"B": 2, "T": 3, "lengths": [3, 1], "num_labels": 2, "dropout": 0.5,
              "seed": 145}, 2.0, ("sentiment_head", "sentiment_dropout"),
             "sentiment in training mode: dropout (a fixed mask) before the linear layer",
             grades=(SENTIMENT,)),
    _visible("paraphrase/visible_cloze", "paraphrase_cloze",
             {"B": 2, "T": 5, "lengths": [5, 2], "answer_ids": [4, 9], "seed": 146}, 2.0,
             ("cloze",), "paraphrase: logits of [no, yes] at the last real token",
             grades=(CLOZE,)),
    sample_case("visible_greedy", "visible: temperature 0 is the argmax", ("sample_greedy",),
                visibility="visible", temperature=0.0, top_p=1.0, seed=147),
    sample_case("visible_top_p", "visible: top-p at temperature 0.8, one uniform per row",
                ("sample_temperature", "sample_top_p", "sample_draw"), visibility="visible",
                temperature=0.8, top_p=0.7, seed=148),
]
# research architectures (handout 9): the docstrings' worked examples where they fit
RESEARCH = [
    _visible("research/visible_alibi_slopes", "alibi_slopes", {"heads": [8, 6]}, 2.0,
             ("alibi_slopes",), "alibi_slopes(8) and alibi_slopes(6), the docstring's examples",
             atol=1e-7, rtol=1e-6, grades=("modules/positions.py:alibi_slopes",)),
    _visible("research/visible_alibi_bias", "alibi_bias",
             {"H": 2, "query_positions": [[0, 1, 2]], "key_positions": [[0, 1, 2]], "seed": 111},
             2.0, ("alibi_bias",), "alibi_bias, positions 0 .. 2, no cache",
             atol=1e-6, rtol=1e-6, grades=("modules/positions.py:alibi_bias",)),
    _visible("research/visible_rotary_tables", "rotary_tables",
             {"positions": [[0, 1]], "rotary_dims": 4, "theta": 100.0}, 2.0, ("rotary_tables",),
             "rotary_tables, the docstring's example (r = 4, theta = 100)",
             atol=1e-6, rtol=1e-6, grades=("modules/positions.py:rotary_tables",)),
    _visible("research/visible_rotate_half", "rotate",
             {"layout": "half", "B": 1, "H": 2, "T": 3, "d": 4, "rotary_dims": 4, "seed": 112},
             2.0, ("rotary_half",), "rotate_half, every channel turned",
             atol=1e-6, rtol=1e-6, grades=("modules/positions.py:rotate_half",)),
    _visible("research/visible_rotate_interleaved", "rotate",
             {"layout": "interleaved", "B": 1, "H": 1, "T": 3, "d": 4, "rotary_dims": 2,
              "seed": 113}, 2.0, ("rotary_interleaved",),
             "rotate_interleaved, channels 2 and 3 pass through",
             atol=1e-6, rtol=1e-6, grades=("modules/positions.py:rotate_interleaved",)),
    _visible("research/visible_swiglu", "swiglu", {"shape": [2, 4], "seed": 114}, 2.0,
             ("swiglu",), "swiglu on [2, 4], and its gradients",
             atol=1e-6, rtol=1e-6, grades=("modules/mlp.py:swiglu",)),
    _visible("research/visible_z_loss", "z_loss",
             {"shape": [3, 5], "scale": 2.0, "gamma": 0.1, "seed": 115}, 2.0, ("z_loss",),
             "z_loss of [3, 5] logits, and its gradient",
             atol=1e-6, rtol=1e-6, grades=("training/losses.py:z_loss",)),
    _visible("research/visible_z_loss_bf16", "z_loss",
             {"shape": [2, 4], "scale": 2.0, "gamma": 0.1, "seed": 149, "dtype": "bfloat16"},
             2.0, ("z_loss", "z_loss_float32"), "z_loss of bfloat16 logits is a float32 loss",
             atol=1e-6, rtol=1e-5, grades=("training/losses.py:z_loss",)),
    _visible("research/visible_mu_center", "mu_center", {"V": 3, "D": 2, "seed": 116}, 2.0,
             ("mu_center",), "mu_center_ of a [3, 2] embedding, in place",
             atol=1e-6, rtol=1e-6, grades=("training/losses.py:mu_center_",)),
]
LORA = [
    _visible("lora/visible_forward", "lora_forward",
             {"in": 6, "out": 5, "r": 4, "alpha": 8.0, "shape": [2, 3], "seed": 111}, 2.0,
             ("lora_forward", "lora_scaling"),
             "LoRALinear.forward in eval mode, and the adapters' gradients",
             grades=("modules/lora.py:LoRALinear.forward",)),
    _visible("lora/visible_forward_dropout", "lora_forward",
             {"in": 5, "out": 4, "r": 1, "alpha": 2.0, "dropout": 0.5, "train": True,
              "shape": [3, 2], "seed": 150}, 2.0, ("lora_forward", "lora_dropout"),
             "forward in training mode: dropout on the adapter's input only (r = 1, so "
             "alpha / r = alpha)", grades=("modules/lora.py:LoRALinear.forward",)),
    _visible("lora/visible_fresh_forward", "lora_forward",
             {"in": 4, "out": 3, "r": 2, "alpha": 4.0, "fresh": True, "shape": [2],
              "seed": 151}, 2.0, ("lora_init",), "a fresh adapter leaves base(x) unchanged",
             grades=("modules/lora.py:LoRALinear.forward",)),
    _visible("lora/visible_delta_weight", "lora_delta_weight",
             {"in": 6, "out": 5, "r": 3, "alpha": 6.0, "seed": 112}, 2.0, ("lora_delta",),
             "delta_weight, [out, in]", grades=("modules/lora.py:LoRALinear.delta_weight",)),
    _visible("lora/visible_merge", "lora_merge",
             {"in": 4, "out": 3, "r": 2, "alpha": 4.0, "seed": 113}, 2.0, ("lora_merge",),
             "merge folds the update into base.weight",
             grades=("modules/lora.py:LoRALinear.merge",)),
]
DPO = [
    _visible("dpo/visible_sequence_logprobs", "sequence_logprobs",
             {"prompts": [2, 3], "completions": [3, 2], "seed": 114}, 2.0,
             ("logp_shift", "logp_completion"), "sequence_logprobs, summed, no padding",
             grades=("dpo.py:sequence_logprobs",)),
    _visible("dpo/visible_sequence_logprobs_average", "sequence_logprobs",
             {"prompts": [1, 3], "completions": [3, 1], "average": True, "seed": 152}, 2.0,
             ("logp_shift", "logp_completion", "logp_average"),
             "sequence_logprobs with average=True, a right-padded row",
             grades=("dpo.py:sequence_logprobs",)),
    _visible("dpo/visible_sigmoid_loss", "dpo_pair_loss",
             {"loss": "sigmoid", "B": 4, "scale": 10.0, "beta": 0.1, "seed": 115}, 2.0,
             ("dpo_beta", "dpo_sigmoid"), "sigmoid_loss without label smoothing",
             grades=("dpo.py:sigmoid_loss",)),
    _visible("dpo/visible_ipo_loss", "dpo_pair_loss",
             {"loss": "ipo", "B": 4, "scale": 5.0, "beta": 0.1, "seed": 116}, 2.0, ("dpo_ipo",),
             "ipo_loss", grades=("dpo.py:ipo_loss",)),
    _visible("dpo/visible_hinge_loss", "dpo_pair_loss",
             {"loss": "hinge", "B": 4, "scale": 10.0, "beta": 0.1, "seed": 117}, 2.0,
             ("dpo_hinge",), "hinge_loss", grades=("dpo.py:hinge_loss",)),
    _visible("dpo/visible_dpo_loss", "dpo_loss",
             {"loss_type": "sigmoid", "B": 4, "beta": 0.1, "seed": 118}, 2.0,
             ("dpo_margin", "dpo_rewards"), "dpo_loss, sigmoid, with a reference",
             grades=("dpo.py:dpo_loss",)),
]
QUANTIZE = [
    _visible("quantize/visible_quantize_int8", "quantize_int8",
             {"out": 4, "in": 6, "tie_rows": [1], "zero_rows": [3], "seed": 175}, 2.0,
             ("quant_scale", "quant_zero_row", "quant_round"),
             "quantize_int8 of a [4, 6] weight: a row of half-way entries, a zero row",
             atol=0.0, rtol=1e-6, grades=("modules/quantize.py:quantize_int8",)),
    _visible("quantize/visible_int8_linear", "int8_linear",
             {"in": 5, "out": 3, "shape": [2], "seed": 176}, 2.0, ("int8_forward",),
             "Int8Linear.forward of a float32 [2, 5] input, and its gradient",
             atol=1e-6, rtol=1e-6, grades=("modules/quantize.py:Int8Linear.forward",)),
    _visible("quantize/visible_int8_linear_float64", "int8_linear",
             {"in": 4, "out": 6, "shape": [3, 2], "dtype": "float64", "seed": 177}, 2.0,
             ("int8_forward", "int8_dtype"),
             "Int8Linear.forward of a float64 input computes in float64",
             atol=1e-10, rtol=1e-10, grades=("modules/quantize.py:Int8Linear.forward",)),
]
REFT = [
    _visible("reft/visible_forward", "reft_forward", {"D": 6, "r": 2, "shape": [2, 3],
                                                      "seed": 184}, 2.0, ("reft_edit",),
             "LoReFTIntervention.forward of rank 2, and the gradients of h, W and b",
             atol=1e-5, rtol=1e-5, grades=("modules/reft.py:LoReFTIntervention.forward",)),
    _visible("reft/visible_forward_dropout", "reft_forward",
             {"D": 5, "r": 1, "shape": [4], "dropout": 0.5, "train": True, "seed": 185}, 2.0,
             ("reft_edit", "reft_dropout"),
             "forward in training mode: dropout on the whole edited state", atol=1e-5,
             rtol=1e-5, grades=("modules/reft.py:LoReFTIntervention.forward",)),
]
PRECONDITIONED = [
    newton_schulz_case("visible_newton_schulz", "a wide matrix, the default quintic", 2.0,
                       4, 6, scale=3.0, seed=160, visibility="visible"),
    newton_schulz_case("visible_newton_schulz_tall", "a tall matrix, 3 steps of another "
                       "polynomial", 2.0, 6, 3, scale=0.5, steps=3,
                       coefficients=(2.0, -1.5, 0.5), seed=161, visibility="visible"),
    newton_schulz_case("visible_newton_schulz_tiny", "a matrix whose norm is below eps", 1.0,
                       3, 5, scale=1e-10, seed=167, visibility="visible"),
    preconditioned_case("visible_muon", "three Nesterov steps of a wide matrix", "muon",
                        [muon_hyper()], 2.0, seed=162, visibility="visible"),
    preconditioned_case("visible_muon_plain", "no Nesterov, weight decay, a tall matrix",
                        "muon", [muon_hyper(lr=0.1, nesterov=False, weight_decay=0.5,
                                            adjust_lr_fn="original")], 2.0,
                        shapes=((6, 3),), seed=163, visibility="visible"),
    preconditioned_case("visible_muon_rms", "adjust_lr_fn='match_rms_adamw'", "muon",
                        [muon_hyper(adjust_lr_fn="match_rms_adamw")], 2.0,
                        shapes=((5, 5), (3, 7)), seed=164, visibility="visible"),
    preconditioned_case("visible_shampoo", "three steps of a wide matrix", "shampoo",
                        [shampoo_hyper()], 2.0, shapes=((3, 5),), seed=165,
                        visibility="visible"),
    preconditioned_case("visible_shampoo_every", "update_every=2, momentum, weight decay",
                        "shampoo", [shampoo_hyper(lr=0.1, update_every=2, momentum=0.9,
                                                  weight_decay=0.3)], 2.0,
                        shapes=((4, 4), (5, 2)), steps=4, seed=166, visibility="visible"),
]
SMART_KL, SMART_LOSS = "training/smart.py:symmetric_kl", "training/smart.py:smart_loss"
SMART_KL_RULES = ("smart_kl_directions", "smart_kl_reduction")
SMART_STEP_RULES = ("smart_ascent", "smart_normalise", "smart_final")
SMART = [
    _visible("smart/visible_symmetric_kl", "symmetric_kl",
             {"shape": [3, 4], "scale": 2.0, "seed": 170}, 2.0, SMART_KL_RULES,
             "symmetric_kl of [3, 4] logits, and its gradients", atol=1e-6, rtol=1e-5,
             grades=(SMART_KL,)),
    _visible("smart/visible_smart_loss_no_step", "smart_loss",
             {"B": 2, "T": 3, "D": 4, "H": 5, "C": 3, "lengths": [3, 2], "noise_scale": 0.1,
              "num_steps": 0, "step_size": 1e-3, "epsilon": 1e-6, "seed": 171}, 2.0,
             ("smart_final",), "smart_loss with num_steps=0: the initial noise only",
             atol=1e-6, rtol=1e-5, grades=(SMART_LOSS,)),
    _visible("smart/visible_smart_loss", "smart_loss",
             {"B": 2, "T": 3, "D": 4, "H": 5, "C": 3, "lengths": [3, 2], "noise_scale": 0.1,
              "num_steps": 1, "step_size": 1.0, "epsilon": 1e-2, "seed": 172}, 2.0,
             SMART_STEP_RULES, "smart_loss with one ascent step", atol=1e-6, rtol=1e-5,
             grades=(SMART_LOSS,)),
]
# sliding-window attention and attention sinks (handout 7.8): the docstring's examples first
WINDOW = [
    _visible("window/visible_causal", "visible_keys",
             {"calls": [[4, 4, None, 0], [2, 5, None, 0], [3, 6, None, 2]]}, 2.0,
             ("window_causal",), "visible_keys without a window: the causal mask, a KV-cache "
             "offset", atol=0.0, rtol=0.0, grades=("modules/attention.py:visible_keys",)),
    _visible("window/visible_window", "visible_keys",
             {"calls": [[1, 4, 2, 0], [5, 5, 2, 0]]}, 2.0, ("window_causal", "window_band"),
             "visible_keys with a window of 2 (the docstring's second example)",
             atol=0.0, rtol=0.0, grades=("modules/attention.py:visible_keys",)),
    _visible("window/visible_sinks", "visible_keys",
             {"calls": [[4, 4, 2, 1], [3, 7, 2, 2]]}, 2.0,
             ("window_causal", "window_band", "window_sinks"),
             "visible_keys with a window and sinks (the docstring's first example)",
             atol=0.0, rtol=0.0, grades=("modules/attention.py:visible_keys",)),
]
CASES = (MODEL + SDPA_CASES + OPTIMIZER + TOKENIZER + TASKS + RESEARCH + LORA + DPO
         + QUANTIZE + REFT + PRECONDITIONED + SMART + WINDOW)

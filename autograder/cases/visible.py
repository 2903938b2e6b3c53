"""Visible cases: shipped with the handout, with their reference outputs, so that
`python -m autograder check` shows a student the same machinery the grader uses."""

from __future__ import annotations

from autograder.case import Case

CASES = [
    Case("attention/visible_causal", "attention",
         {"B": 1, "H": 2, "T_q": 4, "T_k": 4, "d": 3, "seed": 101}, 2.0,
         ("attn_scale", "attn_mask_before_softmax", "attn_causal", "attn_heads"),
         "visible: causal, one row, no padding", visibility="visible"),
    Case("layer/visible_add", "layer_add", {"B": 1, "T": 3, "seed": 102}, 2.0, ("add",),
         "visible: add around the attention projection", visibility="visible"),
    Case("embed/visible_embed", "embed", {"B": 1, "T": 4, "seed": 103}, 2.0, ("embed",),
         "visible: token + position embeddings, positions 0 .. T-1 (eval)",
         visibility="visible"),
    Case("optimizer/visible_adamw", "adamw",
         {"shapes": [[2, 3]], "steps": 3, "seed": 104,
          "groups": [{"lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-10, "weight_decay": 0.0,
                      "correct_bias": True}]}, 2.0, ("adam_moments", "bias_correction"),
         "visible: AdamW, three steps, bias correction", visibility="visible",
         atol=1e-6),
    Case("bpe/visible_count_pairs", "bpe_count_pairs",
         {"words": [[104, 105], [104, 105, 104]], "freqs": [3, 2]}, 2.0, ("bpe_count",),
         "visible: count_pairs on the docstring's example", visibility="visible",
         atol=0.0, rtol=0.0),
]

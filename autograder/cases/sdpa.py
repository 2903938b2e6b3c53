"""The fused path's cases (handout 7.1): `sdpa_attention` follows the attention's rules.

The cases above the staff block ship with the handout (with their reference outputs);
the hidden cases and the mutants below it are staff-only: the release drops the block.
"""

from __future__ import annotations

from autograder.case import Case, visible_case

SDPA = "modules/attention.py:CausalSelfAttention.sdpa_attention"

FORBIDDEN = ("torch.nn.functional.multi_head_attention_forward", "torch.nn.MultiheadAttention",
             "modules.attention.visible_keys", "transformers")
RULES = {
    "sdpa": "the fused path follows the same rule",
}
CASES = [
    visible_case("sdpa/visible_kv_offset", "attention",
                 {"B": 2, "H": 2, "T_q": 2, "T_k": 5, "d": 3, "lengths": [5, 3], "impl": "sdpa",
                  "seed": 140}, 3.0, ("sdpa",), "fused path, 2 queries over 5 keys, padding",
                 grades=(SDPA,)),
]

### BEGIN STAFF


def _sdpa(name, title, **params):
    return Case(f"sdpa/{name}", "attention", {**params, "impl": "sdpa"}, 2.0, ("sdpa",), title,
                grades=(SDPA,))


CASES += [
    _sdpa("causal", "fused path, causal, no padding", B=2, H=2, T_q=5, T_k=5, d=4, seed=11),
    _sdpa("padded", "fused path, right padding", B=3, H=2, T_q=6, T_k=6, d=4,
          lengths=[6, 3, 1], seed=12),
    _sdpa("kv_offset", "fused path, 2 queries over 7 keys", B=2, H=3, T_q=2, T_k=7, d=4,
          lengths=[7, 5], seed=13),
]
# name -> (rule, file, reference text, mutated text)
MUTANTS = {
    "sdpa_through_eager_attention": (
        "sdpa", "modules/attention.py",
        "        dropout_p = self.dropout.p if self.training else 0.0\n"
        "        if T_q == T_k and not attention_mask.any():",
        "        return self.attention(key, query, value, attention_mask)\n"
        "        dropout_p = self.dropout.p if self.training else 0.0\n"
        "        if T_q == T_k and not attention_mask.any():"),
}
### END STAFF

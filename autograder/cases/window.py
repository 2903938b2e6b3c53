"""Sliding-window attention and attention sinks' cases (handout 7.8): `visible_keys`, the
docstring's examples first.

The cases above the staff block ship with the handout (with their reference outputs);
the hidden cases and the mutants below it are staff-only: the release drops the block.
"""

from __future__ import annotations

from autograder.case import ATTENTION_KERNELS, Case, visible_case

VISIBLE_KEYS = "modules/attention.py:visible_keys"


# the causal mask is visible_keys without a window: visible_keys may not read it off a
# solved attention (the attention parts refuse a solved visible_keys in turn)
FORBIDDEN = (*ATTENTION_KERNELS, "modules.attention.CausalSelfAttention", "transformers")
RULES = {
    "window_causal": "visible_keys returns torch.bool [T_q, T_k]; query i sits at position "
                     "p = i + T_k - T_q and never sees a key j > p; without a window it sees "
                     "every j <= p (sinks change nothing)",
    "window_band": "with a window W, query p sees keys p - W < j <= p: W keys, itself "
                   "included",
    "window_sinks": "with a window, keys j < sinks stay visible to every query p >= j, "
                    "besides the window",
}
CASES = [
    visible_case("window/visible_causal", "visible_keys",
                 {"calls": [[4, 4, None, 0], [2, 5, None, 0], [3, 6, None, 2]]}, 2.0,
                 ("window_causal",), "visible_keys without a window: the causal mask, a KV-cache "
                 "offset", atol=0.0, rtol=0.0, grades=(VISIBLE_KEYS,)),
    visible_case("window/visible_window", "visible_keys",
                 {"calls": [[1, 4, 2, 0], [5, 5, 2, 0]]}, 2.0, ("window_causal", "window_band"),
                 "visible_keys with a window of 2 (the docstring's second example)",
                 atol=0.0, rtol=0.0, grades=(VISIBLE_KEYS,)),
    visible_case("window/visible_sinks", "visible_keys",
                 {"calls": [[4, 4, 2, 1], [3, 7, 2, 2]]}, 2.0,
                 ("window_causal", "window_band", "window_sinks"),
                 "visible_keys with a window and sinks (the docstring's first example)",
                 atol=0.0, rtol=0.0, grades=(VISIBLE_KEYS,)),
]

### BEGIN STAFF


def _case(name, calls, rules, title):
    return Case(f"window/{name}", "visible_keys", {"calls": calls}, 2.0, rules,
                f"window: {title}", atol=0.0, rtol=0.0, grades=(VISIBLE_KEYS,))


CASES += [
    _case("causal_offset", [[1, 1, None, 0], [3, 9, None, 0], [7, 7, None, 4]],
          ("window_causal",), "no window: causal, a KV-cache offset, sinks change nothing"),
    _case("band", [[6, 6, 1, 0], [4, 10, 3, 0], [2, 3, 5, 0]],
          ("window_causal", "window_band"), "windows of 1, 3 and wider than the keys"),
    _case("sinks", [[6, 6, 4, 5], [2, 10, 3, 3], [5, 9, 1, 1]],
          ("window_causal", "window_band", "window_sinks"),
          "sinks inside and beyond the window, a cache offset"),
]
# name -> (rule, file, reference text, mutated text)
MUTANTS = {
    "window_one_key_too_many": (
        "window_band", "modules/attention.py",
        "visible = visible & ((key_at > query_at - window) | (key_at < sinks))",
        "visible = visible & ((key_at >= query_at - window) | (key_at < sinks))"),
    "sinks_widen_the_window": (
        "window_sinks", "modules/attention.py",
        "visible = visible & ((key_at > query_at - window) | (key_at < sinks))",
        "visible = visible & (key_at > query_at - window - sinks)"),
}
### END STAFF

"""Hidden cases for sliding-window attention and attention sinks (staff-only, handout 7.8):
`visible_keys` on other shapes than the visible cases'."""

from __future__ import annotations

from autograder.case import Case

VISIBLE_KEYS = "modules/attention.py:visible_keys"


def _case(name, calls, rules, title):
    return Case(f"window/{name}", "visible_keys", {"calls": calls}, 2.0, rules,
                f"window: {title}", atol=0.0, rtol=0.0, grades=(VISIBLE_KEYS,))


CASES = [
    _case("causal_offset", [[1, 1, None, 0], [3, 9, None, 0], [7, 7, None, 4]],
          ("window_causal",), "no window: causal, a KV-cache offset, sinks change nothing"),
    _case("band", [[6, 6, 1, 0], [4, 10, 3, 0], [2, 3, 5, 0]],
          ("window_causal", "window_band"), "windows of 1, 3 and wider than the keys"),
    _case("sinks", [[6, 6, 4, 5], [2, 10, 3, 3], [5, 9, 1, 1]],
          ("window_causal", "window_band", "window_sinks"),
          "sinks inside and beyond the window, a cache offset"),
]

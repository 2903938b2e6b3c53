"""Hidden cases for the research architectures (staff-only): ALiBi, rotary embeddings,
SwiGLU, the z-loss and mu-centering, each fenced function on its own."""

from __future__ import annotations

from autograder.case import Case

POSITIONS = "modules/positions.py"


def _case(name, producer, params, rules, title, function, *, atol, rtol):
    return Case(f"research/{name}", producer, params, 2.0, rules, f"research: {title}",
                atol=atol, rtol=rtol, grades=(function,))


CASES = [
    _case("alibi_slopes", "alibi_slopes", {"heads": [1, 4, 6, 8, 12]}, ("alibi_slopes",),
          "alibi_slopes for powers of two and not", f"{POSITIONS}:alibi_slopes", atol=1e-7,
          rtol=1e-6),
    _case("alibi_bias", "alibi_bias",
          {"H": 3, "query_positions": [[5, 6], [2, 3]], "key_positions": [[0, 1, 2, 3, 4, 5, 6],
                                                                            [0, 1, 2, 3, 0, 0, 0]],
           "seed": 91}, ("alibi_bias",), "alibi_bias with a cache offset and padding",
          f"{POSITIONS}:alibi_bias", atol=1e-6, rtol=1e-6),
    _case("rotary_tables", "rotary_tables",
          {"positions": [[0, 1, 2, 3, 30], [7, 8, 9, 0, 0]], "rotary_dims": 6, "theta": 500.0},
          ("rotary_tables",), "rotary_tables: angles p * theta^(-2k/r)",
          f"{POSITIONS}:rotary_tables", atol=1e-5, rtol=1e-5),
    _case("rotate_half", "rotate",
          {"layout": "half", "B": 2, "H": 2, "T": 5, "d": 8, "rotary_dims": 6,
           "seed": 92}, ("rotary_half",),
          "rotate_half: pairs (k, k + r/2), channels past r unchanged",
          f"{POSITIONS}:rotate_half", atol=1e-6, rtol=1e-6),
    _case("rotate_interleaved", "rotate",
          {"layout": "interleaved", "B": 2, "H": 2, "T": 5, "d": 8, "rotary_dims": 6,
           "seed": 93}, ("rotary_interleaved",),
          "rotate_interleaved: pairs (2k, 2k + 1), channels past r unchanged",
          f"{POSITIONS}:rotate_interleaved", atol=1e-6, rtol=1e-6),
    _case("swiglu", "swiglu", {"shape": [2, 3, 10], "seed": 94}, ("swiglu",),
          "swiglu: silu(gate) * value and its gradients", "modules/mlp.py:swiglu",
          atol=1e-6, rtol=1e-6),
    _case("z_loss", "z_loss", {"shape": [2, 5, 11], "scale": 4.0, "gamma": 1e-2, "seed": 95},
          ("z_loss",), "z_loss: gamma * mean of logsumexp^2, and its gradient",
          "training/losses.py:z_loss", atol=1e-6, rtol=1e-5),
    _case("z_loss_large_logits", "z_loss",
          {"shape": [4, 7], "scale": 60.0, "gamma": 1e-4, "seed": 97}, ("z_loss",),
          "z_loss of [N, V] logits above 100: a stable log-sum-exp, no overflow",
          "training/losses.py:z_loss", atol=1e-6, rtol=1e-5),
    _case("z_loss_bf16", "z_loss",
          {"shape": [2, 3, 9], "scale": 3.0, "gamma": 1e-2, "seed": 98, "dtype": "bfloat16"},
          ("z_loss", "z_loss_float32"), "z_loss of bfloat16 logits is a float32 loss",
          "training/losses.py:z_loss", atol=1e-6, rtol=1e-5),
    _case("mu_center", "mu_center", {"V": 9, "D": 4, "seed": 96}, ("mu_center",),
          "mu_center_: the mean row subtracted, in place", "training/losses.py:mu_center_",
          atol=1e-6, rtol=1e-6),
]

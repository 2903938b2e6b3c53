"""The research architectures' cases (handout 9): ALiBi, rotary embeddings, SwiGLU, the
z-loss and mu-centering, each fenced function on its own; the visible ones are the
docstrings' worked examples where they fit.

The cases above the staff block ship with the handout (with their reference outputs);
the hidden cases and the mutants below it are staff-only: the release drops the block.
"""

from __future__ import annotations

from autograder.case import ATTENTION_KERNELS, Case, visible_case

FORBIDDEN = (*ATTENTION_KERNELS, "transformers")
RULES = {
    "alibi_slopes": "ALiBi slopes 2^(-8h/H) for a power of two H, else the P slopes of the "
                    "largest power of two P below H and then every other slope of 2P heads",
    "alibi_bias": "bias[b, h, i, j] = slopes[h] * (key_positions[b, j] - "
                  "query_positions[b, i])",
    "rotary_tables": "rotary angles p * theta^(-2k / r), k = 0 .. r/2 - 1, as cos and sin "
                     "[B, 1, T, r/2]",
    "rotary_half": "rotate_half pairs channel k with k + r/2: (a cos - b sin, b cos + a sin); "
                   "channels r .. d-1 unchanged",
    "rotary_interleaved": "rotate_interleaved pairs channels 2k and 2k + 1: (a cos - b sin, "
                          "b cos + a sin); channels r .. d-1 unchanged",
    "swiglu": "swiglu(gate, value) = silu(gate) * value",
    "z_loss": "z-loss = gamma * mean over positions of logsumexp(logits)^2, in float32",
    "z_loss_float32": "z_loss computes in float32 whatever the logits' dtype (bfloat16 under "
                      "autocast) and returns a float32 scalar",
    "mu_center": "mu_center_ subtracts the mean row from every row, in place, and returns "
                 "the same tensor",
}
CASES = [
    visible_case("research/visible_alibi_slopes", "alibi_slopes", {"heads": [8, 6]}, 2.0,
                 ("alibi_slopes",), "alibi_slopes(8) and alibi_slopes(6), the docstring's examples",
                 atol=1e-7, rtol=1e-6, grades=("modules/positions.py:alibi_slopes",)),
    visible_case("research/visible_alibi_bias", "alibi_bias",
                 {"H": 2, "query_positions": [[0, 1, 2]], "key_positions": [[0, 1, 2]], "seed": 111},
                 2.0, ("alibi_bias",), "alibi_bias, positions 0 .. 2, no cache",
                 atol=1e-6, rtol=1e-6, grades=("modules/positions.py:alibi_bias",)),
    visible_case("research/visible_rotary_tables", "rotary_tables",
                 {"positions": [[0, 1]], "rotary_dims": 4, "theta": 100.0}, 2.0, ("rotary_tables",),
                 "rotary_tables, the docstring's example (r = 4, theta = 100)",
                 atol=1e-6, rtol=1e-6, grades=("modules/positions.py:rotary_tables",)),
    visible_case("research/visible_rotate_half", "rotate",
                 {"layout": "half", "B": 1, "H": 2, "T": 3, "d": 4, "rotary_dims": 4, "seed": 112},
                 2.0, ("rotary_half",), "rotate_half, every channel turned",
                 atol=1e-6, rtol=1e-6, grades=("modules/positions.py:rotate_half",)),
    visible_case("research/visible_rotate_interleaved", "rotate",
                 {"layout": "interleaved", "B": 1, "H": 1, "T": 3, "d": 4, "rotary_dims": 2,
                  "seed": 113}, 2.0, ("rotary_interleaved",),
                 "rotate_interleaved, channels 2 and 3 pass through",
                 atol=1e-6, rtol=1e-6, grades=("modules/positions.py:rotate_interleaved",)),
    visible_case("research/visible_swiglu", "swiglu", {"shape": [2, 4], "seed": 114}, 2.0,
                 ("swiglu",), "swiglu on [2, 4], and its gradients",
                 atol=1e-6, rtol=1e-6, grades=("modules/mlp.py:swiglu",)),
    visible_case("research/visible_z_loss", "z_loss",
                 {"shape": [3, 5], "scale": 2.0, "gamma": 0.1, "seed": 115}, 2.0, ("z_loss",),
                 "z_loss of [3, 5] logits, and its gradient",
                 atol=1e-6, rtol=1e-6, grades=("training/losses.py:z_loss",)),
    visible_case("research/visible_z_loss_bf16", "z_loss",
                 {"shape": [2, 4], "scale": 2.0, "gamma": 0.1, "seed": 149, "dtype": "bfloat16"},
                 2.0, ("z_loss", "z_loss_float32"), "z_loss of bfloat16 logits is a float32 loss",
                 atol=1e-6, rtol=1e-5, grades=("training/losses.py:z_loss",)),
    visible_case("research/visible_mu_center", "mu_center", {"V": 3, "D": 2, "seed": 116}, 2.0,
                 ("mu_center",), "mu_center_ of a [3, 2] embedding, in place",
                 atol=1e-6, rtol=1e-6, grades=("training/losses.py:mu_center_",)),
]

### BEGIN STAFF

POSITIONS = "modules/positions.py"


def _case(name, producer, params, rules, title, function, *, atol, rtol):
    return Case(f"research/{name}", producer, params, 2.0, rules, f"research: {title}",
                atol=atol, rtol=rtol, grades=(function,))


CASES += [
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
# name -> (rule, file, reference text, mutated text)
MUTANTS = {
    "alibi_slopes_even_not_odd": (
        "alibi_slopes", "modules/positions.py", "geometric(2 * power)[0::2]",
        "geometric(2 * power)[1::2]"),
    "alibi_bias_reversed": (
        "alibi_bias", "modules/positions.py",
        "key_positions[:, None, None, :] - query_positions[:, None, :, None]",
        "query_positions[:, None, :, None] - key_positions[:, None, None, :]"),
    "rotary_frequencies_over_half": (
        "rotary_tables", "modules/positions.py",
        "dtype=torch.int64).float() / rotary_dims",
        "dtype=torch.int64).float() / (rotary_dims // 2)"),
    "rotate_half_sign": (
        "rotary_half", "modules/positions.py",
        "return torch.cat([a * cos - b * sin, b * cos + a * sin, rest], dim=-1)",
        "return torch.cat([a * cos + b * sin, b * cos - a * sin, rest], dim=-1)"),
    "rotate_interleaved_pairs_swapped": (
        "rotary_interleaved", "modules/positions.py",
        "a, b, rest = x[..., 0:2 * half:2], x[..., 1:2 * half:2]",
        "b, a, rest = x[..., 0:2 * half:2], x[..., 1:2 * half:2]"),
    "swiglu_gates_the_value": (
        "swiglu", "modules/mlp.py", "return F.silu(gate) * value", "return F.silu(value) * gate"),
    "z_loss_square_of_mean": (
        "z_loss", "training/losses.py", "logsumexp(dim=-1).square().mean()",
        "logsumexp(dim=-1).mean().square()"),
    "mu_center_columns": (
        "mu_center", "training/losses.py", "output_embedding.mean(dim=0, keepdim=True)",
        "output_embedding.mean(dim=1, keepdim=True)"),
    "alibi_slopes_geometric_for_every_head_count": (
        "alibi_slopes", "modules/positions.py",
        "slopes = geometric(power) + geometric(2 * power)[0::2][: num_heads - power]",
        "slopes = geometric(num_heads)"),
    "rotary_positions_off_by_one": (
        "rotary_tables", "modules/positions.py",
        "angles = positions.float()[:, None, :, None] * inverse_frequency",
        "angles = (positions.float() + 1)[:, None, :, None] * inverse_frequency"),
    "rotate_half_pairs_off_by_one": (
        "rotary_half", "modules/positions.py",
        "x[..., :half], x[..., half:2 * half], x[..., 2 * half:]",
        "x[..., :half], x[..., half - 1:2 * half - 1], x[..., 2 * half:]"),
    "rotate_interleaved_pairs_off_by_one": (
        "rotary_interleaved", "modules/positions.py",
        "x[..., 0:2 * half:2], x[..., 1:2 * half:2]",
        "x[..., 1:2 * half + 1:2], x[..., 2:2 * half + 2:2]"),
    "z_loss_without_the_square": (
        "z_loss", "training/losses.py", "logsumexp(dim=-1).square().mean()",
        "logsumexp(dim=-1).mean()"),
    "z_loss_in_the_logits_dtype": (
        "z_loss_float32", "training/losses.py", "return gamma * logits.float().logsumexp(",
        "return gamma * logits.logsumexp("),
    "mu_center_not_in_place": (
        "mu_center", "training/losses.py", "return output_embedding.sub_(",
        "return output_embedding.sub("),
}
### END STAFF

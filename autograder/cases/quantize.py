"""Quantization's cases (handout 7.4): `quantize_int8` and `Int8Linear.forward`, each on its own.

The cases above the staff block ship with the handout (with their reference outputs);
the hidden cases and the mutants below it are staff-only: the release drops the block.
"""

from __future__ import annotations

from autograder.case import Case, visible_case

FORBIDDEN = ("torchao", "torch.ao", "torch.quantization", "torch.nn.quantized",
             "torch.quantize_per_channel", "torch._weight_int8pack_mm", "transformers")
RULES = {
    "quant_scale": "quantize_int8's scale is max |weight[row]| / 127 per row, float32 [out], "
                   "and q = clamp(round(weight / scale[:, None]), -127, 127) as int8",
    "quant_zero_row": "an all-zero row has scale 1.0 (and codes 0)",
    "quant_round": "q rounds half to even (torch.round): 2.5 -> 2, 3.5 -> 4, -2.5 -> -2",
    "int8_forward": "Int8Linear.forward is x @ dequantize_int8(q, scale)^T + bias (no bias "
                    "when it is None)",
    "int8_dtype": "Int8Linear.forward computes in x's dtype: W and the bias are cast to "
                  "x.dtype, the result has x's dtype",
}
CASES = [
    visible_case("quantize/visible_quantize_int8", "quantize_int8",
                 {"out": 4, "in": 6, "tie_rows": [1], "zero_rows": [3], "seed": 175}, 2.0,
                 ("quant_scale", "quant_zero_row", "quant_round"),
                 "quantize_int8 of a [4, 6] weight: a row of half-way entries, a zero row",
                 atol=0.0, rtol=1e-6, grades=("modules/quantize.py:quantize_int8",)),
    visible_case("quantize/visible_int8_linear", "int8_linear",
                 {"in": 5, "out": 3, "shape": [2], "seed": 176}, 2.0, ("int8_forward",),
                 "Int8Linear.forward of a float32 [2, 5] input, and its gradient",
                 atol=1e-6, rtol=1e-6, grades=("modules/quantize.py:Int8Linear.forward",)),
    visible_case("quantize/visible_int8_linear_float64", "int8_linear",
                 {"in": 4, "out": 6, "shape": [3, 2], "dtype": "float64", "seed": 177}, 2.0,
                 ("int8_forward", "int8_dtype"),
                 "Int8Linear.forward of a float64 input computes in float64",
                 atol=1e-10, rtol=1e-10, grades=("modules/quantize.py:Int8Linear.forward",)),
]

### BEGIN STAFF

QUANTIZE = "modules/quantize.py:quantize_int8"
FORWARD = "modules/quantize.py:Int8Linear.forward"


def _case(name, producer, params, rules, title, function, **options):
    return Case(f"quantize/{name}", producer, params, 2.0, rules, f"quantize: {title}",
                grades=(function,), **options)


CASES += [
    _case("quantize_int8_random", "quantize_int8",
          {"out": 9, "in": 17, "scale": 3.0, "seed": 171}, ("quant_scale",),
          "quantize_int8 of a random [9, 17] weight", QUANTIZE, atol=0.0, rtol=1e-6),
    _case("quantize_int8_float64_ties_zero_rows", "quantize_int8",
          {"out": 6, "in": 11, "dtype": "float64", "tie_rows": [0, 3], "zero_rows": [2, 5],
           "seed": 172}, ("quant_scale", "quant_zero_row", "quant_round"),
          "quantize_int8 of a float64 weight with half-way entries and zero rows", QUANTIZE,
          atol=0.0, rtol=1e-6),
    _case("int8_linear_3d", "int8_linear",
          {"in": 10, "out": 7, "shape": [2, 3], "seed": 173}, ("int8_forward",),
          "Int8Linear.forward of a [2, 3, 10] input, and the input's gradient", FORWARD,
          atol=1e-6, rtol=1e-6),
    _case("int8_linear_bf16_no_bias", "int8_linear",
          {"in": 8, "out": 5, "shape": [4], "bias": False, "dtype": "bfloat16", "seed": 174},
          ("int8_forward", "int8_dtype"),
          "Int8Linear.forward of a bfloat16 input without a bias (bfloat16 out)", FORWARD,
          atol=2e-2, rtol=2e-2),
]
# name -> (rule, file, reference text, mutated text)
MUTANTS = {
    "quantize_scale_over_128": (
        "quant_scale", "modules/quantize.py",
        "scale = work.abs().amax(dim=1) / Q_MAX  # (out,)",
        "scale = work.abs().amax(dim=1) / (Q_MAX + 1)  # (out,)"),
    "quantize_zero_row_scale_zero": (
        "quant_zero_row", "modules/quantize.py",
        "    scale = torch.where(scale == 0, torch.ones_like(scale), scale)\n", ""),
    "quantize_round_half_up": (
        "quant_round", "modules/quantize.py",
        "q = torch.round(work / scale[:, None])", "q = torch.floor(work / scale[:, None] + 0.5)"),
    "int8_linear_without_scale": (
        "int8_forward", "modules/quantize.py",
        "weight = dequantize_int8(self.q, self.scale).to(x.dtype)  # (out, in)",
        "weight = self.q.to(x.dtype)  # (out, in)"),
    "int8_linear_in_float32": (
        "int8_dtype", "modules/quantize.py",
        "        weight = dequantize_int8(self.q, self.scale).to(x.dtype)  # (out, in)\n"
        "        bias = None if self.bias is None else self.bias.to(x.dtype)\n"
        "        return F.linear(x, weight, bias)  # (..., out)\n",
        "        weight = dequantize_int8(self.q, self.scale)  # (out, in)\n"
        "        return F.linear(x.float(), weight, self.bias)  # (..., out)\n"),
}
### END STAFF

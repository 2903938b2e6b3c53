"""Hidden cases for quantization (handout 7.4), staff-only: `quantize_int8` and
`Int8Linear.forward`, each on its own."""

from __future__ import annotations

from autograder.case import Case

QUANTIZE = "modules/quantize.py:quantize_int8"
FORWARD = "modules/quantize.py:Int8Linear.forward"


def _case(name, producer, params, rules, title, function, **options):
    return Case(f"quantize/{name}", producer, params, 2.0, rules, f"quantize: {title}",
                grades=(function,), **options)


CASES = [
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

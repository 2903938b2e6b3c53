"""Hidden cases for ReFT (handout 7.5), staff-only: `LoReFTIntervention.forward`."""

from __future__ import annotations

from autograder.case import Case

FORWARD = "modules/reft.py:LoReFTIntervention.forward"


def _case(name, params, rules, title, **options):
    return Case(f"reft/{name}", "reft_forward", params, 2.0, rules, f"reft: {title}",
                grades=(FORWARD,), **options)


CASES = [
    _case("forward_rank3", {"D": 10, "r": 3, "shape": [4], "seed": 181}, ("reft_edit",),
          "forward of rank 3 on [4, 10], and the gradients of h, W and b",
          atol=1e-5, rtol=1e-5),
    _case("forward_float64", {"D": 7, "r": 7, "shape": [2, 2], "dtype": "float64",
                              "seed": 182}, ("reft_edit",),
          "forward of full rank in float64", atol=1e-10, rtol=1e-10),
    _case("forward_dropout", {"D": 9, "r": 2, "shape": [3, 2], "dropout": 0.3, "train": True,
                              "seed": 183}, ("reft_edit", "reft_dropout"),
          "forward in training mode: dropout on the edited state", atol=1e-5, rtol=1e-5),
]

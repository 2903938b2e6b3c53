"""ReFT's cases (handout 7.5): `LoReFTIntervention.forward`.

The cases above the staff block ship with the handout (with their reference outputs);
the hidden cases and the mutants below it are staff-only: the release drops the block.
"""

from __future__ import annotations

from autograder.case import Case, visible_case

FORBIDDEN = ("pyreft", "pyvene", "peft", "transformers")
RULES = {
    "reft_edit": "LoReFTIntervention.forward returns h + (learned_source(h) - h R^T) R, in "
                 "h's dtype (R [r, D] maps back, not R^T)",
    "reft_dropout": "LoReFT dropout acts on the whole edited state h + (...) R, in training "
                    "only",
}
CASES = [
    visible_case("reft/visible_forward", "reft_forward", {"D": 6, "r": 2, "shape": [2, 3],
                                                          "seed": 184}, 2.0, ("reft_edit",),
                 "LoReFTIntervention.forward of rank 2, and the gradients of h, W and b",
                 atol=1e-5, rtol=1e-5, grades=("modules/reft.py:LoReFTIntervention.forward",)),
    visible_case("reft/visible_forward_dropout", "reft_forward",
                 {"D": 5, "r": 1, "shape": [4], "dropout": 0.5, "train": True, "seed": 185}, 2.0,
                 ("reft_edit", "reft_dropout"),
                 "forward in training mode: dropout on the whole edited state", atol=1e-5,
                 rtol=1e-5, grades=("modules/reft.py:LoReFTIntervention.forward",)),
]

### BEGIN STAFF

FORWARD = "modules/reft.py:LoReFTIntervention.forward"


def _case(name, params, rules, title, **options):
    return Case(f"reft/{name}", "reft_forward", params, 2.0, rules, f"reft: {title}",
                grades=(FORWARD,), **options)


CASES += [
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
# name -> (rule, file, reference text, mutated text)
MUTANTS = {
    "reft_source_sign_flipped": (
        "reft_edit", "modules/reft.py",
        "delta = (self.learned_source(h) - F.linear(h, R)) @ R  # (..., D)",
        "delta = (self.learned_source(h) + F.linear(h, R)) @ R  # (..., D)"),
    "reft_dropout_on_the_edit_only": (
        "reft_dropout", "modules/reft.py",
        "return self.dropout((h + delta).to(h.dtype))",
        "return (h + self.dropout(delta)).to(h.dtype)"),
}
### END STAFF

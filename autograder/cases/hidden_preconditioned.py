"""Hidden cases for the preconditioned optimizers (staff-only, handout 7.6): `newton_schulz`
on other shapes and polynomials, `Muon.step` and `Shampoo.step` with two parameter groups,
a parameter without a gradient, and each hyper-parameter on its own."""

from __future__ import annotations

from autograder.cases.visible import (
    muon_hyper,
    newton_schulz_case,
    preconditioned_case,
    shampoo_hyper,
)

CASES = [
    newton_schulz_case("newton_schulz_square", "a square matrix, 7 steps", 2.0, 5, 5,
                       scale=2.0, steps=7, seed=170),
    newton_schulz_case("newton_schulz_tall", "a tall matrix, one step of the cubic", 2.0, 7,
                       2, scale=4.0, steps=1, coefficients=(1.5, -0.5, 0.0), seed=171),
    newton_schulz_case("newton_schulz_tiny_tall", "a tall matrix whose norm is below eps",
                       1.0, 6, 2, scale=1e-6, eps=1e-3, steps=3, seed=178),
    preconditioned_case("muon_groups", "two groups and a parameter with no gradient",
                        "muon", [muon_hyper(), muon_hyper(lr=0.05, momentum=0.8,
                                                          nesterov=False, weight_decay=0.2)],
                        3.0, shapes=((3, 5), (6, 4), (4, 4)), frozen=(2,), steps=4, seed=172),
    preconditioned_case("muon_rms_tall", "match_rms_adamw on a tall matrix, weight decay",
                        "muon", [muon_hyper(lr=0.1, weight_decay=0.4,
                                            adjust_lr_fn="match_rms_adamw")], 2.0,
                        shapes=((7, 3),), steps=3, seed=173),
    preconditioned_case("muon_square_plain", "a square matrix, no Nesterov", "muon",
                        [muon_hyper(momentum=0.9, nesterov=False, ns_steps=3)], 2.0,
                        shapes=((4, 4),), steps=5, seed=174),
    preconditioned_case("shampoo_groups", "two groups and a parameter with no gradient",
                        "shampoo", [shampoo_hyper(), shampoo_hyper(lr=0.02, beta2=0.99,
                                                                   eps=1e-3, momentum=0.5)],
                        3.0, shapes=((2, 5), (4, 3), (3, 3)), frozen=(2,), steps=4, seed=175),
    preconditioned_case("shampoo_every3", "update_every=3 over seven steps", "shampoo",
                        [shampoo_hyper(beta2=0.95, update_every=3)], 2.0, shapes=((5, 3),),
                        steps=7, seed=176),
    preconditioned_case("shampoo_decay", "weight decay on a tall matrix", "shampoo",
                        [shampoo_hyper(lr=0.2, eps=1e-6, weight_decay=0.5)], 2.0,
                        shapes=((6, 2),), steps=3, seed=177),
]

"""Hidden cases for `AdamW.step` (staff-only): each combination of weight decay and bias
correction, two parameter groups, a parameter without a gradient, and where eps goes.

Only `eps_placement` depends on where eps is added: every other case uses eps=1e-10, at
which the handout's efficient form alpha_t * m / (sqrt(v) + eps) and the textbook form
m_hat / (sqrt(v_hat) + eps) agree far inside the tolerance."""

from __future__ import annotations

from autograder.cases.visible import adamw_case, adamw_hyper


def _adamw(name, title, groups, **options):
    return adamw_case(name, title, groups, 3.0, **options)


CASES = [
    _adamw("bias_correction", "bias correction, no weight decay", [adamw_hyper()], seed=71),
    _adamw("no_bias_correction", "correct_bias=False", [adamw_hyper(correct_bias=False)], seed=72),
    _adamw("weight_decay", "weight decay with bias correction",
           [adamw_hyper(lr=0.1, weight_decay=0.5)], seed=73),
    _adamw("weight_decay_no_correction", "weight decay, correct_bias=False",
           [adamw_hyper(lr=0.1, weight_decay=0.3, correct_bias=False)], seed=74),
    _adamw("groups", "two parameter groups and a parameter with no gradient",
           [adamw_hyper(), adamw_hyper(lr=0.05, betas=(0.8, 0.99), weight_decay=0.2)],
           shapes=((4,), (2, 2), (3,)), frozen=(2,), steps=4, seed=75),
    _adamw("eps_placement", "eps added to sqrt(v) in the efficient form (eps=0.01)",
           [adamw_hyper(eps=1e-2)], seed=76),
]

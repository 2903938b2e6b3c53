"""Hidden cases for `AdamW.step` (staff-only): each combination of weight decay and bias
correction, two parameter groups, a parameter without a gradient, and where eps goes.

Only `eps_placement` depends on where eps is added: every other case uses eps=1e-10, at
which the handout's efficient form alpha_t * m / (sqrt(v) + eps) and the textbook form
m_hat / (sqrt(v_hat) + eps) agree far inside the tolerance."""

from __future__ import annotations

from autograder.case import Case


def _hyper(lr=0.01, betas=(0.9, 0.999), eps=1e-10, weight_decay=0.0, correct_bias=True):
    return {"lr": lr, "betas": list(betas), "eps": eps, "weight_decay": weight_decay,
            "correct_bias": correct_bias}


def _rules(*groups):
    rules = ["adam_moments"]
    rules += ["bias_correction"] if any(g["correct_bias"] for g in groups) else []
    rules += ["weight_decay"] if any(g["weight_decay"] for g in groups) else []
    rules += ["adam_eps"] if any(g["eps"] > 1e-10 and g["correct_bias"] for g in groups) else []
    return tuple(rules)


def _adamw(name, title, groups, shapes=((3, 4), (5,)), steps=5, frozen=(), seed=0):
    params = {"shapes": [list(s) for s in shapes], "steps": steps, "seed": seed,
              "groups": groups, "frozen": list(frozen)}
    return Case(f"optimizer/{name}", "adamw", params, 3.0, _rules(*groups),
                f"AdamW: {title}", atol=1e-6)


CASES = [
    _adamw("bias_correction", "bias correction, no weight decay", [_hyper()], seed=71),
    _adamw("no_bias_correction", "correct_bias=False", [_hyper(correct_bias=False)], seed=72),
    _adamw("weight_decay", "weight decay with bias correction",
           [_hyper(lr=0.1, weight_decay=0.5)], seed=73),
    _adamw("weight_decay_no_correction", "weight decay, correct_bias=False",
           [_hyper(lr=0.1, weight_decay=0.3, correct_bias=False)], seed=74),
    _adamw("groups", "two parameter groups and a parameter with no gradient",
           [_hyper(), _hyper(lr=0.05, betas=(0.8, 0.99), weight_decay=0.2)],
           shapes=((4,), (2, 2), (3,)), frozen=(2,), steps=4, seed=75),
    _adamw("eps_placement", "eps added to sqrt(v) in the efficient form (eps=0.01)",
           [_hyper(eps=1e-2)], seed=76),
]

"""The optimizer's cases (handout 4): `AdamW.step`, each combination of weight decay and bias
correction, two parameter groups, a parameter without a gradient, and where eps goes.

Only the eps-placement cases depend on where eps is added: every other case uses
eps=1e-10, at which the handout's efficient form alpha_t * m / (sqrt(v) + eps) and the
textbook form m_hat / (sqrt(v_hat) + eps) agree far inside the tolerance.

The cases above the staff block ship with the handout (with their reference outputs);
the hidden cases and the mutants below it are staff-only: the release drops the block.
"""

from __future__ import annotations

from autograder.case import Case


def adamw_hyper(lr=0.01, betas=(0.9, 0.999), eps=1e-10, weight_decay=0.0, correct_bias=True):
    """One parameter group's hyper-parameters, as the `adamw` producer reads them."""
    return {"lr": lr, "betas": list(betas), "eps": eps, "weight_decay": weight_decay,
            "correct_bias": correct_bias}


def adamw_rules(*groups) -> tuple[str, ...]:
    """The rules an AdamW run with these groups depends on: eps placement only shows at an
    eps far above 1e-10 with bias correction."""
    rules = ["adam_moments"]
    rules += ["bias_correction"] if any(g["correct_bias"] for g in groups) else []
    rules += ["weight_decay"] if any(g["weight_decay"] for g in groups) else []
    rules += ["adam_eps"] if any(g["eps"] > 1e-10 and g["correct_bias"] for g in groups) else []
    return tuple(rules)


def adamw_case(name, title, groups, points, shapes=((3, 4), (5,)), steps=5, frozen=(), seed=0,
               visibility="after_due_date"):
    params = {"shapes": [list(s) for s in shapes], "steps": steps, "seed": seed,
              "groups": groups, "frozen": list(frozen)}
    return Case(f"optimizer/{name}", "adamw", params, points, adamw_rules(*groups),
                f"AdamW: {title}", visibility=visibility, atol=1e-6,
                grades=("optimizer.py:AdamW.step",))


FORBIDDEN = ("torch.optim",)
RULES = {
    "adam_moments": "AdamW moments from zeros, per parameter: m = b1 m + (1 - b1) g, "
                    "v = b2 v + (1 - b2) g^2, each group's own hyper-parameters, parameters "
                    "without a gradient skipped",
    "bias_correction": "bias correction when correct_bias: alpha_t = lr * sqrt(1 - b2^t) / "
                       "(1 - b1^t) with t counted from 1 per parameter (alpha_t = lr without)",
    "adam_eps": "the efficient form p -= alpha_t * m / (sqrt(v) + eps): eps is added to "
                "sqrt(v), not to sqrt(v_hat) as in the textbook m_hat / (sqrt(v_hat) + eps)",
    "weight_decay": "decoupled weight decay p -= lr * weight_decay * p, after the Adam "
                    "update",
}
CASES = [
    adamw_case("visible_adamw", "three steps, bias correction", [adamw_hyper()], 2.0,
               shapes=((2, 3),), steps=3, seed=104, visibility="visible"),
    adamw_case("visible_no_bias_correction", "correct_bias=False",
               [adamw_hyper(correct_bias=False)], 2.0, shapes=((3,),), steps=3, seed=141,
               visibility="visible"),
    adamw_case("visible_weight_decay", "weight decay after the update",
               [adamw_hyper(lr=0.1, weight_decay=0.5)], 2.0, shapes=((2, 2),), steps=3,
               seed=142, visibility="visible"),
    adamw_case("visible_eps_placement", "eps added to sqrt(v) (eps=0.01)",
               [adamw_hyper(eps=1e-2)], 2.0, shapes=((4,),), steps=3, seed=143,
               visibility="visible"),
]

### BEGIN STAFF


def _adamw(name, title, groups, **options):
    return adamw_case(name, title, groups, 3.0, **options)


CASES += [
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
# name -> (rule, file, reference text, mutated text)
MUTANTS = {
    "no_bias_correction": (
        "bias_correction", "optimizer.py", 'if group["correct_bias"]:', "if False:"),
    "weight_decay_before_update": (
        "weight_decay", "optimizer.py",
        '                p.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-alpha)\n'
        '                if group["weight_decay"] > 0.0:\n'
        '                    p.mul_(1.0 - group["lr"] * group["weight_decay"])\n',
        '                if group["weight_decay"] > 0.0:\n'
        '                    p.mul_(1.0 - group["lr"] * group["weight_decay"])\n'
        '                p.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-alpha)\n'),
    "weight_decay_without_lr": (
        "weight_decay", "optimizer.py",
        'p.mul_(1.0 - group["lr"] * group["weight_decay"])',
        'p.mul_(1.0 - group["weight_decay"])'),
}
### END STAFF

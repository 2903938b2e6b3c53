"""The preconditioned optimizers' cases (handout 7.6): `newton_schulz` on several shapes and
polynomials, `Muon.step` and `Shampoo.step` with two parameter groups, a parameter without
a gradient, and each hyper-parameter on its own.

The cases above the staff block ship with the handout (with their reference outputs);
the hidden cases and the mutants below it are staff-only: the release drops the block.
"""

from __future__ import annotations

from autograder.case import Case

NEWTON_SCHULZ = "optimizer.py:newton_schulz"
MUON_STEP, SHAMPOO_STEP = "optimizer.py:Muon.step", "optimizer.py:Shampoo.step"
QUINTIC = [3.4445, -4.7750, 2.0315]  # Muon's default Newton-Schulz coefficients


def newton_schulz_case(name, title, points, rows, cols, scale=1.0, steps=5,
                       coefficients=QUINTIC, eps=1e-7, seed=0, visibility="after_due_date"):
    """newton_schulz of a seeded float64 [rows, cols] times `scale`; a scale below
    eps / (rows * cols) gives a matrix whose norm is below eps, divided by eps, not by its
    norm."""
    params = {"rows": rows, "cols": cols, "scale": scale, "steps": steps,
              "coefficients": list(coefficients), "eps": eps, "seed": seed}
    below_eps = scale < eps / (rows * cols)
    rules = ("ns_eps" if below_eps else "ns_normalize", "ns_iteration")
    return Case(f"preconditioned/{name}", "newton_schulz", params, points, rules,
                f"newton_schulz: {title}", visibility=visibility, atol=1e-8, rtol=1e-8,
                grades=(NEWTON_SCHULZ,))


def muon_hyper(lr=0.02, momentum=0.95, nesterov=True, ns_steps=5, ns_coefficients=QUINTIC,
               eps=1e-7, weight_decay=0.0, adjust_lr_fn=None):
    """One Muon parameter group's hyper-parameters, as the `muon` producer reads them."""
    return {"lr": lr, "momentum": momentum, "nesterov": nesterov, "ns_steps": ns_steps,
            "ns_coefficients": list(ns_coefficients), "eps": eps,
            "weight_decay": weight_decay, "adjust_lr_fn": adjust_lr_fn}


def shampoo_hyper(lr=0.05, beta2=0.9, eps=1e-4, update_every=1, momentum=0.0,
                  weight_decay=0.0):
    """One Shampoo parameter group's hyper-parameters, as the `shampoo` producer reads them."""
    return {"lr": lr, "beta2": beta2, "eps": eps, "update_every": update_every,
            "momentum": momentum, "weight_decay": weight_decay}


def muon_rules(groups, shapes) -> tuple[str, ...]:
    """The rules a Muon run depends on (over two or more steps, where the momentum shows
    through the orthogonalisation): the original lr adjustment only shows on a non-square
    matrix of a group that uses it."""
    shapes_of = [[s for i, s in enumerate(shapes) if i % len(groups) == g]
                 for g in range(len(groups))]
    rules = ["muon_momentum"]
    rules += ["muon_nesterov"] if any(g["nesterov"] for g in groups) else []
    rules += ["muon_lr_original"] if any(
        g["adjust_lr_fn"] in (None, "original") and any(r != c for r, c in own)
        for g, own in zip(groups, shapes_of, strict=True)) else []
    rules += ["muon_lr_rms"] if any(g["adjust_lr_fn"] == "match_rms_adamw"
                                    for g in groups) else []
    rules += ["muon_weight_decay"] if any(g["weight_decay"] for g in groups) else []
    return tuple(rules)


def shampoo_rules(groups) -> tuple[str, ...]:
    """The rules a Shampoo run of two or more steps depends on."""
    rules = ["shampoo_factors", "shampoo_roots"]
    rules += ["shampoo_update_every"] if any(g["update_every"] > 1 for g in groups) else []
    rules += ["shampoo_momentum"] if any(g["momentum"] for g in groups) else []
    rules += ["shampoo_weight_decay"] if any(g["weight_decay"] for g in groups) else []
    return tuple(rules)


def preconditioned_case(name, title, optimizer, groups, points, shapes=((4, 6),), steps=3,
                        frozen=(), seed=0, visibility="after_due_date"):
    """`steps` (two or more) steps of Muon or Shampoo (`optimizer`) on seeded float64
    parameters of `shapes`, parameter i in group i % len(groups)."""
    params = {"shapes": [list(s) for s in shapes], "steps": steps, "seed": seed,
              "groups": groups, "frozen": list(frozen)}
    rules = muon_rules(groups, shapes) if optimizer == "muon" else shampoo_rules(groups)
    return Case(f"preconditioned/{name}", optimizer, params, points, rules,
                f"{optimizer.capitalize()}: {title}", visibility=visibility, atol=1e-8,
                rtol=1e-8, grades=(MUON_STEP if optimizer == "muon" else SHAMPOO_STEP,))


FORBIDDEN = ("torch.optim",)  # torch.optim.Muon, torch.optim._muon's Newton-Schulz
RULES = {
    "ns_normalize": "newton_schulz first divides X by its Frobenius norm ||X||_F",
    "ns_eps": "the norm is clamped at eps: X / max(||X||_F, eps), so a matrix whose norm is "
              "below eps is divided by eps (and a zero matrix stays zero)",
    "ns_iteration": "newton_schulz repeats `steps` times A = X X^T, X = a X + (b A + c A A) X "
                    "with (a, b, c) = coefficients, in G's dtype (not bfloat16)",
    "muon_momentum": "Muon's buffer from zeros, per parameter: buf = buf.lerp(g, 1 - momentum), "
                     "each group's own hyper-parameters, parameters without a gradient skipped",
    "muon_nesterov": "with nesterov the update orthogonalised is g.lerp(buf, momentum), "
                     "without it buf",
    "muon_lr_original": "adjust_lr_fn None or 'original' scales lr by sqrt(max(1, rows / "
                        "cols))",
    "muon_lr_rms": "adjust_lr_fn 'match_rms_adamw' scales lr by 0.2 * sqrt(max(rows, cols))",
    "muon_weight_decay": "Muon's decoupled decay p *= 1 - lr * weight_decay (the unadjusted lr) "
                         "comes before the update",
    "shampoo_factors": "Shampoo's factors from zeros: L = beta2 L + (1 - beta2) G G^T, R = "
                       "beta2 R + (1 - beta2) G^T G, parameters without a gradient skipped",
    "shampoo_roots": "the update is (L + eps I)^(-1/4) G (R + eps I)^(-1/4)",
    "shampoo_update_every": "the inverse roots are recomputed at steps 1, 1 + update_every, ... "
                            "and reused in between",
    "shampoo_momentum": "heavy-ball momentum on the update: buf = momentum * buf + update, "
                        "then p -= lr * buf",
    "shampoo_weight_decay": "Shampoo's decoupled decay p *= 1 - lr * weight_decay comes before "
                            "the update",
}
CASES = [
    newton_schulz_case("visible_newton_schulz", "a wide matrix, the default quintic", 2.0,
                       4, 6, scale=3.0, seed=160, visibility="visible"),
    newton_schulz_case("visible_newton_schulz_tall", "a tall matrix, 3 steps of another "
                       "polynomial", 2.0, 6, 3, scale=0.5, steps=3,
                       coefficients=(2.0, -1.5, 0.5), seed=161, visibility="visible"),
    newton_schulz_case("visible_newton_schulz_tiny", "a matrix whose norm is below eps", 1.0,
                       3, 5, scale=1e-10, seed=167, visibility="visible"),
    preconditioned_case("visible_muon", "three Nesterov steps of a wide matrix", "muon",
                        [muon_hyper()], 2.0, seed=162, visibility="visible"),
    preconditioned_case("visible_muon_plain", "no Nesterov, weight decay, a tall matrix",
                        "muon", [muon_hyper(lr=0.1, nesterov=False, weight_decay=0.5,
                                            adjust_lr_fn="original")], 2.0,
                        shapes=((6, 3),), seed=163, visibility="visible"),
    preconditioned_case("visible_muon_rms", "adjust_lr_fn='match_rms_adamw'", "muon",
                        [muon_hyper(adjust_lr_fn="match_rms_adamw")], 2.0,
                        shapes=((5, 5), (3, 7)), seed=164, visibility="visible"),
    preconditioned_case("visible_shampoo", "three steps of a wide matrix", "shampoo",
                        [shampoo_hyper()], 2.0, shapes=((3, 5),), seed=165,
                        visibility="visible"),
    preconditioned_case("visible_shampoo_every", "update_every=2, momentum, weight decay",
                        "shampoo", [shampoo_hyper(lr=0.1, update_every=2, momentum=0.9,
                                                  weight_decay=0.3)], 2.0,
                        shapes=((4, 4), (5, 2)), steps=4, seed=166, visibility="visible"),
]

### BEGIN STAFF
CASES += [
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
# name -> (rule, file, reference text, mutated text)
MUTANTS = {
    "ns_coefficients_swapped": (
        "ns_iteration", "optimizer.py",
        "X = a * X + (b * A + c * A @ A) @ X", "X = a * X + (c * A + b * A @ A) @ X"),
    "muon_nesterov_ignored": (
        "muon_nesterov", "optimizer.py",
        'update = grad.lerp(buf, momentum) if group["nesterov"] else buf', "update = buf"),
    "shampoo_roots_every_step": (
        "shampoo_update_every", "optimizer.py",
        'if (state["step"] - 1) % group["update_every"] == 0:', "if True:"),
    "ns_spectral_by_max": (
        "ns_normalize", "optimizer.py",
        "X = X / X.norm().clamp(min=eps)", "X = X / X.abs().max().clamp(min=eps)"),
    "ns_no_eps_clamp": (
        "ns_eps", "optimizer.py", "X = X / X.norm().clamp(min=eps)", "X = X / X.norm()"),
    "muon_lerp_swapped": (
        "muon_momentum", "optimizer.py",
        "buf.lerp_(grad, 1.0 - momentum)", "buf.lerp_(grad, momentum)"),
    "muon_ratio_inverted": (
        "muon_lr_original", "optimizer.py",
        "ratio = math.sqrt(max(1.0, rows / cols))", "ratio = math.sqrt(max(1.0, cols / rows))"),
    "muon_rms_without_0_2": (
        "muon_lr_rms", "optimizer.py",
        "ratio = 0.2 * math.sqrt(max(rows, cols))", "ratio = math.sqrt(max(rows, cols))"),
    "muon_decay_after_update": (
        "muon_weight_decay", "optimizer.py",
        '                p.mul_(1.0 - lr * group["weight_decay"])\n'
        "                p.add_(update, alpha=-lr * ratio)\n",
        "                p.add_(update, alpha=-lr * ratio)\n"
        '                p.mul_(1.0 - lr * group["weight_decay"])\n'),
    "shampoo_factor_not_averaged": (
        "shampoo_factors", "optimizer.py",
        "left.mul_(beta2).add_(grad @ grad.T, alpha=1.0 - beta2)",
        "left.mul_(beta2).add_(grad @ grad.T)"),
    "shampoo_inverse_square_root": (
        "shampoo_roots", "optimizer.py",
        "roots = (w.clamp(min=0.0) + eps).pow(-0.25)", "roots = (w.clamp(min=0.0) + eps).pow(-0.5)"),
    "shampoo_momentum_averaged": (
        "shampoo_momentum", "optimizer.py",
        'buf.mul_(group["momentum"]).add_(update)',
        'buf.mul_(group["momentum"]).add_(update, alpha=1.0 - group["momentum"])'),
    "shampoo_decay_after_update": (
        "shampoo_weight_decay", "optimizer.py",
        '                p.mul_(1.0 - lr * group["weight_decay"])\n'
        "                p.add_(update, alpha=-lr)\n",
        "                p.add_(update, alpha=-lr)\n"
        '                p.mul_(1.0 - lr * group["weight_decay"])\n'),
}
### END STAFF

"""The preconditioned-optimizer part of the autograder (handout 7.6): the mutants of each of
its rules beyond the one per graded function in `tests/test_autograder_mutants.py`.

Only the `preconditioned` group is graded here: `newton_schulz`, `Muon` and `Shampoo` are
reached by no case of another part (the `optimizer` part grades `AdamW.step` alone), so
grading the rest could only repeat the reference's full marks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from autograder_helpers import reference_submission
from test_autograder_mutants import mutate

from autograder.case import all_cases
from autograder.grade import grade

GROUP = "preconditioned"

# name -> (rule, file, reference text, mutated text)
MUTANTS = {
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


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_preconditioned_mutant_loses_exactly_the_cases_of_its_rule(name, tmp_path: Path):
    rule, rel, old, new = MUTANTS[name]
    folder = reference_submission(tmp_path / "submission")
    mutate(folder, rel, old, new)
    data = grade(folder, only=[GROUP], predictions=False)
    cases = [case for case in all_cases() if case.group == GROUP]
    expected = {case.name for case in cases if rule in case.rules}
    failed = {t["extra_data"]["case"] for t in data["tests"] if t["status"] != "passed"}
    assert expected, f"no case checks rule {rule}"
    assert failed == expected, (f"lost but not declared: {sorted(failed - expected)}; "
                                f"declared but kept: {sorted(expected - failed)}")
    total = sum(case.points for case in cases)
    lost = sum(case.points for case in cases if case.name in expected)
    assert data["score"] == pytest.approx(total - lost, abs=1e-9)

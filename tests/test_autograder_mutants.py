"""Targeted mutants: plausible student bugs, each applied to the reference solution.

Each part's mutants live in the staff block of its case module (`autograder/cases/<part>.py`
`MUTANTS`: name -> (rule, file, reference text, mutated text)).  Each mutant breaks one
handout rule and must lose exactly the cases whose `rules` list that rule, keeping every
other point.  This is what makes a case's declared rules trustworthy.

A mutant is graded on every part, except in the parts whose functions no case of another
part reaches (`GRADED_ALONE`: the research functions, which the other parts' learned
positions and tanh-GELU never run, checked in `tests/test_autograder_research.py`, and
the preconditioned optimizers, which no other case steps): grading the rest could only
repeat the reference's full marks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from autograder_helpers import reference_submission

from autograder.case import all_cases, case_modules
from autograder.grade import grade

GRADED_ALONE = ("research", "preconditioned")
MUTANTS = {f"{part}/{name}": (part, *mutant) for part, module in case_modules().items()
           for name, mutant in module.MUTANTS.items()}


def mutate(folder: Path, rel: str, old: str, new: str) -> None:
    path = folder / rel
    text = path.read_text()
    assert text.count(old) == 1, f"{rel}: the reference text of the mutant moved: {old!r}"
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_loses_exactly_the_cases_of_its_rule(name, tmp_path):
    part, rule, rel, old, new = MUTANTS[name]
    folder = reference_submission(tmp_path / "submission")
    mutate(folder, rel, old, new)
    cases = all_cases(parts=(part,) if part in GRADED_ALONE else None)
    only = sorted({case.group for case in cases}) if part in GRADED_ALONE else None
    data = grade(folder, only=only, predictions=False)
    expected = {case.name for case in cases if rule in case.rules}
    failed = {t["extra_data"]["case"] for t in data["tests"] if t["status"] != "passed"}
    assert expected, f"no case checks rule {rule}"
    assert failed == expected, (f"lost but not declared: {sorted(failed - expected)}; "
                                f"declared but kept: {sorted(expected - failed)}")
    total = sum(case.points for case in cases)
    lost = sum(case.points for case in cases if case.name in expected)
    assert data["score"] == pytest.approx(total - lost, abs=1e-9)


def test_every_mutant_breaks_a_rule_of_its_own_part():
    declared = {rule: part for part, module in case_modules().items() for rule in module.RULES}
    assert {name: declared.get(rule) for name, (part, rule, *_) in MUTANTS.items()
            if declared.get(rule) != part} == {}

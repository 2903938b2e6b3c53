"""What a graded case is, and the registry of all cases (visible and, on staff machines, hidden).

A `Case` names a *producer* (a function in `autograder/producers/`, run in the sandboxed
child on seeded inputs built from `params`) and says how the judge scores its arrays:
points, tolerance, Gradescope visibility, and the *rules* of the handout it checks.  The
rules are what the targeted mutants break: a mutant of rule R must lose exactly the cases
whose `rules` contain R (`tests/test_autograder_mutants.py`).

Each part with graded functions has one case module, `autograder/cases/<part>.py`, and a
case's part is the module it is listed in.  The module holds:

- `FORBIDDEN`: the library calls that would do its fenced functions' job for them; a case
  refuses them in the source of the functions it grades (`autograder/judge.py`) and while
  they run (`autograder/child.py`);
- `RULES`: rule tag -> the rule in words (a failed case's feedback states each of its rules
  this way); each tag is declared by one part, and a case may cite any part's;
- `CASES`: its visible cases, which ship with the handout with their reference outputs, so
  that `python -m autograder check` works for students;
- between `### BEGIN STAFF` and `### END STAFF`, staff-only: `CASES += [...]` its hidden
  cases, and `MUTANTS` (name -> (rule, file, reference text, mutated text)).  The release
  drops the block (`autograder/fences.py` `strip_staff`).

A case names the fenced functions it grades (`grades`, `"<file>:<qualname>"`); they belong
to its module's part (the release checks it, `autograder/release.py`).  A new case module
is picked up without being listed.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from autograder.manifest import PARTS

# Gradescope visibilities: "hidden", "after_due_date", "after_published", "visible".
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
CASES_DIR = Path(__file__).resolve().parent / "cases"
# Wall-clock seconds the child may spend on one group (imports of the student's modules
# included); `pretrained` also imports transformers.
GROUP_TIMEOUT_S = {"pretrained": 60.0}
DEFAULT_GROUP_TIMEOUT_S = 30.0
# What no fenced function may hand its job to (a case module's `FORBIDDEN` names a module,
# everything in it, or a dotted path to a function or class): the attention kernels.
ATTENTION_KERNELS = ("torch.nn.functional.scaled_dot_product_attention",
                     "torch.nn.functional.multi_head_attention_forward",
                     "torch.nn.MultiheadAttention")
# Names inside a refused module that a graded function may use: the base class the
# handout's AdamW extends (its module, and the name `torch.optim` exports it under).
ALLOWED_CALLS = ("torch.optim.optimizer", "torch.optim.Optimizer")


@dataclass(frozen=True)
class Case:
    name: str  # unique, "<group>/<what>", also the key prefix in the reference .npz
    producer: str  # key of autograder.producers.PRODUCERS
    params: dict[str, Any]  # JSON-able inputs; seeds live here
    points: float
    rules: tuple[str, ...]  # handout rules this case checks (see RULES)
    title: str  # one line shown to the student
    visibility: str = "after_due_date"
    atol: float = 1e-5  # |out - ref| <= atol + rtol * |ref|, element-wise
    rtol: float = 1e-5
    dropout_keys: tuple[str, ...] = ()  # keys judged by dropout pattern, not by value
    time_limit_s: float | None = None  # timed by the parent from outside the child
    extra: dict[str, Any] = field(default_factory=dict)  # judge options (e.g. dropout p)
    grades: tuple[str, ...] = ()  # the fenced functions it grades, "<file>:<qualname>"
    part: str = ""  # the part of its case module (`all_cases` sets it)
    forbidden: tuple[str, ...] = ()  # its case module's FORBIDDEN (`all_cases` sets it)

    @property
    def group(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def visible(self) -> bool:
        return self.visibility == "visible"

    def plan_entry(self) -> dict[str, Any]:
        """What the child needs to run this case (no points, no tolerances): the calls it
        refuses while the functions it grades run, too."""
        return {"name": self.name, "producer": self.producer, "params": self.params,
                "grades": list(self.grades), "forbidden": list(self.forbidden),
                "allowed": list(ALLOWED_CALLS)}


def visible_case(name, producer, params, points, rules, title, **options) -> Case:
    """A case shown before the deadline: its title starts with "visible: "."""
    return Case(name, producer, params, points, rules, f"visible: {title}",
                visibility="visible", **options)


def case_modules() -> dict[str, ModuleType]:
    """part -> its case module, `autograder/cases/<part>.py`, in handout order; ValueError
    naming a module that is not a part."""
    names = sorted(info.name for info in pkgutil.iter_modules([str(CASES_DIR)]))
    unknown = sorted(set(names) - set(PARTS))
    if unknown:
        raise ValueError(f"autograder/cases/: {unknown} name no part; a case module is named "
                         f"after its part, one of {list(PARTS)}")
    return {part: importlib.import_module(f"autograder.cases.{part}")
            for part in PARTS if part in names}


@functools.cache
def all_rules() -> dict[str, str]:
    """Every rule tag of every case module -> the rule in words; ValueError naming a tag two
    parts declare."""
    rules: dict[str, str] = {}
    for part, module in case_modules().items():
        twice = sorted(set(rules) & set(module.RULES))
        if twice:
            raise ValueError(f"autograder/cases/{part}.py declares rules {twice} that another "
                             "part declares; a rule belongs to one part")
        rules.update(module.RULES)
    return rules


def rules_in_words(case: Case) -> str:
    """What a failed case's feedback ends with: each rule the case depends on, in words."""
    return "\n".join(["This case depends on every one of these rules:"]
                     + [f"- {all_rules()[rule]}" for rule in case.rules])


def all_cases(include_hidden: bool = True, parts: tuple[str, ...] | None = None) -> list[Case]:
    """Every case of this tree (the visible ones only unless `include_hidden`; of `parts`
    only, when given), in grading order: by part, then by group as first listed; each with
    its module's part and FORBIDDEN; validated (unique names, known rules, visibilities)."""
    rules = all_rules()
    cases = [dataclasses.replace(case, part=part, forbidden=tuple(module.FORBIDDEN))
             for part, module in case_modules().items() for case in module.CASES]
    names = [case.name for case in cases]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate case names: {duplicates}")
    for case in cases:
        unknown = set(case.rules) - set(rules)
        if unknown or case.visibility not in VISIBILITIES:
            raise ValueError(f"case {case.name}: unknown rules {sorted(unknown)} or "
                             f"visibility {case.visibility!r}")
    if not include_hidden:
        cases = [case for case in cases if case.visible]
    if parts is not None:
        cases = [case for case in cases if case.part in parts]
    groups = list(dict.fromkeys(case.group for case in cases))
    order = list(PARTS)
    return sorted(cases, key=lambda c: (order.index(c.part), groups.index(c.group)))


def select(cases: list[Case], only: list[str] | None) -> list[Case]:
    """The cases of the groups in `only` (all when empty); unknown groups raise ValueError."""
    if not only:
        return cases
    groups = {c.group for c in cases}
    unknown = sorted(set(only) - groups)
    if unknown:
        raise ValueError(f"unknown case groups {unknown}; choose from {sorted(groups)}")
    return [c for c in cases if c.group in only]


def group_timeout(group: str) -> float:
    return GROUP_TIMEOUT_S.get(group, DEFAULT_GROUP_TIMEOUT_S)

"""What a graded case is, and the registry of all cases (visible and, on staff machines, hidden).

A `Case` names a *producer* (a function in `autograder/producers/`, run in the sandboxed
child on seeded inputs built from `params`) and says how the judge scores its arrays:
points, tolerance, Gradescope visibility, and the *rules* of the handout it checks.  The
rules are what the targeted mutants in `tests/` break: a mutant of rule R must lose
exactly the cases whose `rules` contain R.

Visible cases (`autograder/cases/visible.py`) ship with the handout, with their reference
outputs, so that `python -m autograder check` works for students.  Hidden cases
(`autograder/cases/hidden*.py`) are staff-only and simply absent from a handout.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any

# Gradescope visibilities: "hidden", "after_due_date", "after_published", "visible".
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
CASE_MODULES = ("autograder.cases.visible", "autograder.cases.hidden_model",
                "autograder.cases.hidden_optim", "autograder.cases.hidden_bpe")

GROUP_ORDER = ("attention", "sdpa", "layer", "embed", "output", "model", "pretrained",
               "optimizer", "bpe")
# Wall-clock seconds the child may spend on one group (imports of the student's modules
# included); `pretrained` also imports transformers.
GROUP_TIMEOUT_S = {"pretrained": 60.0}
DEFAULT_GROUP_TIMEOUT_S = 30.0


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

    @property
    def group(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def visible(self) -> bool:
        return self.visibility == "visible"

    def plan_entry(self) -> dict[str, Any]:
        """What the child needs to run this case (no points, no tolerances)."""
        return {"name": self.name, "producer": self.producer, "params": self.params}


# rule tag -> the rule in words (a failed case's feedback states each of its rules this
# way); every tag used by a case must be listed here.
RULES = {
    "attn_scale": "scores are divided by sqrt(d)",
    "attn_mask_before_softmax": "masks are added to the scores before the softmax",
    "attn_causal": "a query attends to itself and earlier keys only",
    "attn_padding": "padding keys get no attention",
    "attn_heads": "heads are merged back to [B, T, D] in order",
    "attn_dropout": "attention dropout is active in training, off in eval",
    "sdpa": "the fused path follows the same rule",
    "add": "add returns input + dropout(dense(output)), no layer norm",
    "pre_ln": "layer norm is applied to each sub-layer's input (pre-LN)",
    "gelu_tanh": "the MLP uses GELU with the tanh approximation (GPT-2's gelu_new): the "
                 "layer cases supply it as interm_af, the whole-model cases use the "
                 "activation your GPT2Layer.__init__ sets",
    "embed": "embed returns word_embedding[ids] + pos_embedding[positions], positions "
             "0 .. T-1 by default, then dropout on the sum",
    "embed_position_ids": "embed(input_ids, position_ids) uses the given position_ids [B, T] "
                          "instead of 0 .. T-1",
    "tied_output": "logits use the word embedding matrix (tied weights)",
    "model": "your whole model, scaffold included: embed, every layer, the final layer "
             "norm, last_token at each row's last real token",
    "hf_mapping": "Hugging Face weights map onto ours (split, transpose)",
    "adam_moments": "AdamW moments from zeros, per parameter: m = b1 m + (1 - b1) g, "
                    "v = b2 v + (1 - b2) g^2, each group's own hyper-parameters, parameters "
                    "without a gradient skipped",
    "bias_correction": "bias correction when correct_bias: alpha_t = lr * sqrt(1 - b2^t) / "
                       "(1 - b1^t) with t counted from 1 per parameter (alpha_t = lr without)",
    "adam_eps": "the efficient form p -= alpha_t * m / (sqrt(v) + eps): eps is added to "
                "sqrt(v), not to sqrt(v_hat) as in the textbook m_hat / (sqrt(v_hat) + eps)",
    "weight_decay": "decoupled weight decay p -= lr * weight_decay * p, after the Adam "
                    "update",
    "bpe_count": "pairs are counted per adjacent position, weighted by word frequency",
    "bpe_merge": "merge_ids replaces non-overlapping occurrences left to right",
    "bpe_ties": "the most frequent pair wins; ties go to the lexicographically greater pair",
    "bpe_encode": "encoding applies the lowest-ranked merge first, until none applies",
}
ATTENTION_RULES = ("attn_scale", "attn_mask_before_softmax", "attn_causal", "attn_padding",
                   "attn_heads")
MODEL_RULES = ATTENTION_RULES + ("add", "pre_ln", "gelu_tanh", "embed", "model")


def _load_module(name: str):
    """Import a case module if it exists in this tree (hidden ones are absent from handouts)."""
    if importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(name)


def all_cases(include_hidden: bool = True) -> list[Case]:
    """Every case of this tree, in grading order; validated (unique names, known rules)."""
    cases: list[Case] = []
    for module_name in CASE_MODULES:
        if not include_hidden and module_name != "autograder.cases.visible":
            continue
        module = _load_module(module_name)
        if module is not None:
            cases.extend(module.CASES)
    names = [case.name for case in cases]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate case names: {duplicates}")
    for case in cases:
        unknown = set(case.rules) - set(RULES)
        if unknown or case.visibility not in VISIBILITIES:
            raise ValueError(f"case {case.name}: unknown rules {sorted(unknown)} or "
                             f"visibility {case.visibility!r}")
    order = {group: i for i, group in enumerate(GROUP_ORDER)}
    return sorted(cases, key=lambda c: order.get(c.group, len(order)))


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

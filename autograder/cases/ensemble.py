"""Ensembles' cases (handout 7.9): `ensemble_probabilities` of one member and of several,
confident and unsure, in float32 and float64.

The cases above the staff block ship with the handout (with their reference outputs);
the hidden cases and the mutants below it are staff-only: the release drops the block.
"""

from __future__ import annotations

from autograder.case import Case, visible_case

ENSEMBLE = "training/finetune.py:ensemble_probabilities"
MEMBERS_RULES = ("ensemble_classes", "ensemble_softmax_first", "ensemble_equal_weights")
ONE_MEMBER_RULES = ("ensemble_classes", "ensemble_one_member")

# scikit-learn's VotingClassifier(voting="soft") averages its estimators' probabilities
FORBIDDEN = ("sklearn.ensemble", "transformers")
RULES = {
    "ensemble_classes": "ensemble_probabilities returns [N, C]: each member's softmax is over "
                        "the classes (the last dimension), so every row sums to 1",
    "ensemble_softmax_first": "each member's logits go through their own softmax first, then "
                              "the probabilities are averaged (not the softmax of the mean "
                              "logits)",
    "ensemble_equal_weights": "every member weighs 1/M: the mean over all M members, not the "
                              "first member alone nor their sum",
    "ensemble_one_member": "one member (M = 1) is an ensemble too: the result is its softmax, "
                           "[N, C]",
    "ensemble_dtype": "the probabilities keep the logits' dtype: float64 logits give float64 "
                      "probabilities",
}
CASES = [
    visible_case("ensemble/visible_three_members", "ensemble_probabilities",
                 {"N": 4, "C": 5, "scales": [0.5, 4.0, 1.5], "seed": 190}, 2.0, MEMBERS_RULES,
                 "ensemble_probabilities of three members' float32 [4, 5] logits, one confident",
                 atol=1e-6, rtol=1e-5, grades=(ENSEMBLE,)),
    visible_case("ensemble/visible_one_member_float64", "ensemble_probabilities",
                 {"N": 3, "C": 2, "scales": [2.0], "dtype": "float64", "seed": 191}, 2.0,
                 (*ONE_MEMBER_RULES, "ensemble_dtype"),
                 "ensemble_probabilities of one member's float64 [3, 2] logits: its softmax, "
                 "in float64", atol=1e-12, rtol=1e-10, grades=(ENSEMBLE,)),
]

### BEGIN STAFF


def _case(name, params, rules, title, **tolerance):
    return Case(f"ensemble/{name}", "ensemble_probabilities", params, 2.0, rules,
                f"ensemble: {title}", grades=(ENSEMBLE,), **tolerance)


FLOAT32 = {"atol": 1e-6, "rtol": 1e-5}
FLOAT64 = {"atol": 1e-12, "rtol": 1e-10}
CASES += [
    _case("two_members_float64", {"N": 6, "C": 3, "scales": [1.0, 3.0], "dtype": "float64",
                                  "seed": 192},
          (*MEMBERS_RULES, "ensemble_dtype"),
          "ensemble_probabilities of two members' float64 [6, 3] logits", **FLOAT64),
    _case("five_confident_members", {"N": 7, "C": 2, "scales": [5.0, 0.3, 2.0, 8.0, 1.0],
                                     "seed": 193},
          MEMBERS_RULES, "ensemble_probabilities of five members, two classes, some confident",
          **FLOAT32),
    _case("one_member", {"N": 5, "C": 4, "scales": [3.0], "seed": 194}, ONE_MEMBER_RULES,
          "ensemble_probabilities of one member's float32 [5, 4] logits", **FLOAT32),
    _case("one_example_float64", {"N": 1, "C": 6, "scales": [2.0, 0.5, 1.0, 4.0],
                                  "dtype": "float64", "seed": 195},
          (*MEMBERS_RULES, "ensemble_dtype"),
          "ensemble_probabilities of four members on one example, float64", **FLOAT64),
]
# name -> (rule, file, reference text, mutated text)
MUTANTS = {
    "ensemble_softmax_over_examples": (
        "ensemble_classes", "training/finetune.py",
        "return torch.softmax(stacked, dim=-1).mean(dim=0)  # (N, C)",
        "return torch.softmax(stacked, dim=1).mean(dim=0)  # (N, C)"),
    "ensemble_keeps_the_member_dimension": (
        "ensemble_classes", "training/finetune.py",
        "return torch.softmax(stacked, dim=-1).mean(dim=0)  # (N, C)",
        "return torch.softmax(stacked, dim=-1).mean(dim=0, keepdim=True)  # (1, N, C)"),
    "ensemble_averages_logits": (
        "ensemble_softmax_first", "training/finetune.py",
        "return torch.softmax(stacked, dim=-1).mean(dim=0)  # (N, C)",
        "return torch.softmax(stacked.mean(dim=0), dim=-1)  # (N, C)"),
    "ensemble_first_member_only": (
        "ensemble_equal_weights", "training/finetune.py",
        "return torch.softmax(stacked, dim=-1).mean(dim=0)  # (N, C)",
        "return torch.softmax(stacked[0], dim=-1)  # (N, C)"),
    "ensemble_sums_members": (
        "ensemble_equal_weights", "training/finetune.py",
        "return torch.softmax(stacked, dim=-1).mean(dim=0)  # (N, C)",
        "return torch.softmax(stacked, dim=-1).sum(dim=0)  # (N, C)"),
    "ensemble_one_member_returns_logits": (
        "ensemble_one_member", "training/finetune.py",
        "    stacked = torch.stack(list(logits))  # (M, N, C)\n",
        "    if len(logits) == 1:\n"
        "        return logits[0]\n"
        "    stacked = torch.stack(list(logits))  # (M, N, C)\n"),
    "ensemble_in_float32": (
        "ensemble_dtype", "training/finetune.py",
        "return torch.softmax(stacked, dim=-1).mean(dim=0)  # (N, C)",
        "return torch.softmax(stacked.float(), dim=-1).mean(dim=0)  # (N, C)"),
}
### END STAFF

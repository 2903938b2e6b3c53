"""DPO's cases (handout 7.3): `sequence_logprobs`, the three pair losses and `dpo_loss`, each
on its own.

The cases above the staff block ship with the handout (with their reference outputs);
the hidden cases and the mutants below it are staff-only: the release drops the block.
"""

from __future__ import annotations

from autograder.case import Case, visible_case

FORBIDDEN = ("trl", "peft", "transformers")
RULES = {
    "logp_shift": "the token at position t is scored by log_softmax(logits[t - 1])",
    "logp_completion": "only completion tokens count (the end-of-text token included); "
                       "prompt and padding tokens never do",
    "logp_average": "average=True divides each row's sum by its number of completion tokens",
    "dpo_margin": "the margin is (policy_chosen - policy_rejected) - (reference_chosen - "
                  "reference_rejected), without the reference bracket when reference_free, "
                  "passed to the loss of loss_type",
    "dpo_rewards": "rewards are beta * (policy - reference) for chosen and rejected, detached",
    "dpo_beta": "sigmoid_loss scales the margin by beta: sigma(beta * z)",
    "dpo_sigmoid": "sigmoid_loss = -(1 - eps) log sigma(beta z) - eps log sigma(-beta z), "
                   "eps = label_smoothing (DPO at eps = 0)",
    "dpo_ipo": "ipo_loss = (z - 1 / (2 beta))^2",
    "dpo_hinge": "hinge_loss = max(0, 1 - beta z)",
}
CASES = [
    visible_case("dpo/visible_sequence_logprobs", "sequence_logprobs",
                 {"prompts": [2, 3], "completions": [3, 2], "seed": 114}, 2.0,
                 ("logp_shift", "logp_completion"), "sequence_logprobs, summed, no padding",
                 grades=("dpo.py:sequence_logprobs",)),
    visible_case("dpo/visible_sequence_logprobs_average", "sequence_logprobs",
                 {"prompts": [1, 3], "completions": [3, 1], "average": True, "seed": 152}, 2.0,
                 ("logp_shift", "logp_completion", "logp_average"),
                 "sequence_logprobs with average=True, a right-padded row",
                 grades=("dpo.py:sequence_logprobs",)),
    visible_case("dpo/visible_sigmoid_loss", "dpo_pair_loss",
                 {"loss": "sigmoid", "B": 4, "scale": 10.0, "beta": 0.1, "seed": 115}, 2.0,
                 ("dpo_beta", "dpo_sigmoid"), "sigmoid_loss without label smoothing",
                 grades=("dpo.py:sigmoid_loss",)),
    visible_case("dpo/visible_ipo_loss", "dpo_pair_loss",
                 {"loss": "ipo", "B": 4, "scale": 5.0, "beta": 0.1, "seed": 116}, 2.0, ("dpo_ipo",),
                 "ipo_loss", grades=("dpo.py:ipo_loss",)),
    visible_case("dpo/visible_hinge_loss", "dpo_pair_loss",
                 {"loss": "hinge", "B": 4, "scale": 10.0, "beta": 0.1, "seed": 117}, 2.0,
                 ("dpo_hinge",), "hinge_loss", grades=("dpo.py:hinge_loss",)),
    visible_case("dpo/visible_dpo_loss", "dpo_loss",
                 {"loss_type": "sigmoid", "B": 4, "beta": 0.1, "seed": 118}, 2.0,
                 ("dpo_margin", "dpo_rewards"), "dpo_loss, sigmoid, with a reference",
                 grades=("dpo.py:dpo_loss",)),
]

### BEGIN STAFF


def _case(name, producer, params, rules, title, function, **options):
    return Case(f"dpo/{name}", producer, params, 2.0, rules, f"dpo: {title}",
                grades=(function,), **options)


CASES += [
    _case("sequence_logprobs_padded", "sequence_logprobs",
          {"prompts": [3, 1, 2], "completions": [2, 5, 1], "seed": 126},
          ("logp_shift", "logp_completion"), "sequence_logprobs, summed, right-padded rows",
          "dpo.py:sequence_logprobs"),
    _case("sequence_logprobs_average", "sequence_logprobs",
          {"prompts": [1, 4, 2], "completions": [4, 1, 2], "average": True, "seed": 127},
          ("logp_shift", "logp_completion", "logp_average"),
          "sequence_logprobs with average=True, right-padded rows", "dpo.py:sequence_logprobs"),
    _case("sigmoid_loss_smoothed", "dpo_pair_loss",
          {"loss": "sigmoid", "B": 5, "scale": 4.0, "beta": 0.5, "label_smoothing": 0.2,
           "seed": 128}, ("dpo_beta", "dpo_sigmoid"),
          "sigmoid_loss with label smoothing (conservative DPO)", "dpo.py:sigmoid_loss"),
    _case("ipo_loss", "dpo_pair_loss",
          {"loss": "ipo", "B": 5, "scale": 3.0, "beta": 0.25, "seed": 129}, ("dpo_ipo",),
          "ipo_loss", "dpo.py:ipo_loss"),
    _case("hinge_loss", "dpo_pair_loss",
          {"loss": "hinge", "B": 6, "scale": 4.0, "beta": 0.5, "seed": 130}, ("dpo_hinge",),
          "hinge_loss on both sides of the hinge", "dpo.py:hinge_loss"),
    _case("dpo_loss_smoothed", "dpo_loss",
          {"loss_type": "sigmoid", "B": 5, "beta": 0.3, "label_smoothing": 0.1, "seed": 140},
          ("dpo_margin", "dpo_rewards"), "dpo_loss, sigmoid with label smoothing",
          "dpo.py:dpo_loss"),
    _case("dpo_loss_ipo", "dpo_loss", {"loss_type": "ipo", "B": 5, "beta": 0.3, "seed": 150},
          ("dpo_margin", "dpo_rewards"), "dpo_loss, ipo", "dpo.py:dpo_loss"),
    _case("dpo_loss_reference_free", "dpo_loss",
          {"loss_type": "hinge", "B": 6, "beta": 0.2, "reference_free": True, "seed": 160},
          ("dpo_margin", "dpo_rewards"), "dpo_loss, hinge, reference-free", "dpo.py:dpo_loss"),
]
# name -> (rule, file, reference text, mutated text)
MUTANTS = {
    "logp_prompt_counted": (
        "logp_completion", "dpo.py",
        "mask = (completion_mask[:, 1:] * attention_mask[:, 1:]).to(token_logps.dtype)",
        "mask = attention_mask[:, 1:].to(token_logps.dtype)"),
    "logp_off_by_one": (
        "logp_shift", "dpo.py",
        "logits = model.hidden_state_to_token(hidden[:, :-1])",
        "logits = model.hidden_state_to_token(hidden[:, 1:])"),
    "dpo_margin_sign_flipped": (
        "dpo_margin", "dpo.py",
        "logits = policy_logratios - (0 if reference_free else reference_logratios)",
        "logits = (0 if reference_free else reference_logratios) - policy_logratios"),
    "dpo_beta_missing": (
        "dpo_beta", "dpo.py",
        "(-F.logsigmoid(beta * logits) * (1 - label_smoothing)\n"
        "            - F.logsigmoid(-beta * logits) * label_smoothing)",
        "(-F.logsigmoid(logits) * (1 - label_smoothing)\n"
        "            - F.logsigmoid(-logits) * label_smoothing)"),
    "dpo_label_smoothing_swapped": (
        "dpo_sigmoid", "dpo.py",
        "(-F.logsigmoid(beta * logits) * (1 - label_smoothing)\n"
        "            - F.logsigmoid(-beta * logits) * label_smoothing)",
        "(-F.logsigmoid(beta * logits) * label_smoothing\n"
        "            - F.logsigmoid(-beta * logits) * (1 - label_smoothing))"),
}
### END STAFF

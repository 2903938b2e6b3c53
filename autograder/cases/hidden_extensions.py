"""Hidden cases for the extensions (staff-only): LoRA (handout 7.2) and DPO (handout 7.3),
each fenced function on its own."""

from __future__ import annotations

from autograder.case import Case

LORA = "modules/lora.py:LoRALinear."


def _case(name, producer, params, rules, title, function, **options):
    group = "lora" if function.startswith(LORA) else "dpo"
    return Case(f"{group}/{name}", producer, params, 2.0, rules, f"{group}: {title}",
                grades=(function,), **options)


CASES = [
    _case("forward_rslora", "lora_forward",
          {"in": 8, "out": 8, "r": 4, "alpha": 6.0, "rslora": True, "shape": [3],
           "seed": 121}, ("lora_forward", "lora_scaling"),
          "forward with rslora (alpha / sqrt(r)), and the adapters' gradients",
          LORA + "forward"),
    _case("forward_dropout", "lora_forward",
          {"in": 6, "out": 7, "r": 1, "alpha": 2.0, "dropout": 0.5, "train": True,
           "shape": [4, 3], "seed": 122}, ("lora_forward", "lora_dropout"),
          "forward in training mode: dropout on the adapter's input only", LORA + "forward"),
    _case("fresh_forward", "lora_forward",
          {"in": 6, "out": 5, "r": 4, "alpha": 8.0, "fresh": True, "shape": [2, 3],
           "seed": 123}, ("lora_init",), "a fresh adapter leaves base(x) unchanged",
          LORA + "forward"),
    _case("delta_weight_square", "lora_delta_weight",
          {"in": 5, "out": 5, "r": 2, "alpha": 3.0, "seed": 124}, ("lora_delta",),
          "delta_weight of a square layer (B @ A, not its transpose)", LORA + "delta_weight"),
    _case("merge_rslora", "lora_merge",
          {"in": 6, "out": 5, "r": 4, "alpha": 8.0, "rslora": True, "seed": 125},
          ("lora_merge",), "merge of an rslora adapter, in place", LORA + "merge"),
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

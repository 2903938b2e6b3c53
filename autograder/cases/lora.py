"""LoRA's cases (handout 7.2): `LoRALinear`'s forward, delta_weight and merge, each on its own.

The cases above the staff block ship with the handout (with their reference outputs);
the hidden cases and the mutants below it are staff-only: the release drops the block.
"""

from __future__ import annotations

from autograder.case import Case, visible_case

FORBIDDEN = ("peft", "trl", "transformers")
RULES = {
    "lora_forward": "LoRALinear.forward returns base(x) + (dropout(x) @ lora_A^T @ lora_B^T) "
                    "* scaling",
    "lora_scaling": "the update is scaled by scaling = alpha / r (alpha / sqrt(r) with "
                    "rslora), not by alpha",
    "lora_dropout": "LoRA dropout acts on the adapter branch's input only: base(x) and the "
                    "update itself are not dropped",
    "lora_init": "a fresh adapter (lora_B zero, as __init__ sets it) leaves base(x) unchanged",
    "lora_delta": "delta_weight is (lora_B @ lora_A) * scaling, [out, in] like base.weight",
    "lora_merge": "merge adds delta_weight() to base.weight in place and sets merged",
}
CASES = [
    visible_case("lora/visible_forward", "lora_forward",
                 {"in": 6, "out": 5, "r": 4, "alpha": 8.0, "shape": [2, 3], "seed": 111}, 2.0,
                 ("lora_forward", "lora_scaling"),
                 "LoRALinear.forward in eval mode, and the adapters' gradients",
                 grades=("modules/lora.py:LoRALinear.forward",)),
    visible_case("lora/visible_forward_dropout", "lora_forward",
                 {"in": 5, "out": 4, "r": 1, "alpha": 2.0, "dropout": 0.5, "train": True,
                  "shape": [3, 2], "seed": 150}, 2.0, ("lora_forward", "lora_dropout"),
                 "forward in training mode: dropout on the adapter's input only (r = 1, so "
                 "alpha / r = alpha)", grades=("modules/lora.py:LoRALinear.forward",)),
    visible_case("lora/visible_fresh_forward", "lora_forward",
                 {"in": 4, "out": 3, "r": 2, "alpha": 4.0, "fresh": True, "shape": [2],
                  "seed": 151}, 2.0, ("lora_init",), "a fresh adapter leaves base(x) unchanged",
                 grades=("modules/lora.py:LoRALinear.forward",)),
    visible_case("lora/visible_delta_weight", "lora_delta_weight",
                 {"in": 6, "out": 5, "r": 3, "alpha": 6.0, "seed": 112}, 2.0, ("lora_delta",),
                 "delta_weight, [out, in]", grades=("modules/lora.py:LoRALinear.delta_weight",)),
    visible_case("lora/visible_merge", "lora_merge",
                 {"in": 4, "out": 3, "r": 2, "alpha": 4.0, "seed": 113}, 2.0, ("lora_merge",),
                 "merge folds the update into base.weight",
                 grades=("modules/lora.py:LoRALinear.merge",)),
]

### BEGIN STAFF

LORA = "modules/lora.py:LoRALinear."


def _case(name, producer, params, rules, title, function, **options):
    return Case(f"lora/{name}", producer, params, 2.0, rules, f"lora: {title}",
                grades=(function,), **options)


CASES += [
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
]
# name -> (rule, file, reference text, mutated text)
MUTANTS = {
    "lora_scaled_by_alpha": (
        "lora_scaling", "modules/lora.py",
        "F.linear(self.lora_dropout(x), self.lora_A) * self.scaling  # (..., r)",
        "F.linear(self.lora_dropout(x), self.lora_A) * self.scaling * self.lora_A.shape[0]"),
    "lora_dropout_on_output": (
        "lora_dropout", "modules/lora.py",
        "        down = F.linear(self.lora_dropout(x), self.lora_A) * self.scaling  # (..., r)\n"
        "        return result + F.linear(down, self.lora_B)  # (..., out)\n",
        "        down = F.linear(x, self.lora_A) * self.scaling\n"
        "        return result + self.lora_dropout(F.linear(down, self.lora_B))\n"),
    "lora_B_not_zero": (
        "lora_init", "modules/lora.py",
        "self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, **factory))",
        "self.lora_B = nn.Parameter(torch.full((base.out_features, r), 0.01, **factory))"),
    "lora_delta_transposed": (
        "lora_delta", "modules/lora.py",
        "return (self.lora_B @ self.lora_A) * self.scaling  # (out, in)",
        "return (self.lora_B @ self.lora_A).T * self.scaling"),
    "lora_merge_wrong_sign": (
        "lora_merge", "modules/lora.py",
        "self.base.weight.add_(self.delta_weight().to(self.base.weight.dtype))\n"
        "        self.merged = True",
        "self.base.weight.sub_(self.delta_weight().to(self.base.weight.dtype))\n"
        "        self.merged = True"),
}
### END STAFF

"""SMART's cases (handout 7.7): `symmetric_kl` on several shapes and scales (rows of a 3-D
batch included), `smart_loss` with zero, one and two steps, the scripts' default step
and epsilon, and padded rows.

The cases above the staff block ship with the handout (with their reference outputs);
the hidden cases and the mutants below it are staff-only: the release drops the block.
"""

from __future__ import annotations

from autograder.case import Case, visible_case

SMART_KL, SMART_LOSS = "training/smart.py:symmetric_kl", "training/smart.py:smart_loss"
SMART_KL_RULES = ("smart_kl_directions", "smart_kl_reduction")
SMART_STEP_RULES = ("smart_ascent", "smart_normalise", "smart_final")

FORBIDDEN = ("smart_pytorch", "transformers")
RULES = {
    "smart_kl_directions": "symmetric_kl = KL(softmax(target.detach()) || softmax(input)) + "
                           "KL(softmax(input.detach()) || softmax(target)): each KL's gradient "
                           "reaches one side only",
    "smart_kl_reduction": "symmetric_kl sums over the classes (last dimension) and averages "
                          "over the rows",
    "smart_ascent": "each step of smart_loss moves the noise along the gradient of "
                    "symmetric_kl(eval_fn(embeddings + noise), clean_logits.detach()) with "
                    "respect to the noise: step = noise + step_size * grad",
    "smart_normalise": "the new noise is step / (max |step| over the last dimension + "
                       "epsilon), detached",
    "smart_final": "smart_loss returns symmetric_kl(eval_fn(embeddings + noise), clean_logits) "
                   "with clean_logits attached, after num_steps steps",
}
CASES = [
    visible_case("smart/visible_symmetric_kl", "symmetric_kl",
                 {"shape": [3, 4], "scale": 2.0, "seed": 170}, 2.0, SMART_KL_RULES,
                 "symmetric_kl of [3, 4] logits, and its gradients", atol=1e-6, rtol=1e-5,
                 grades=(SMART_KL,)),
    visible_case("smart/visible_smart_loss_no_step", "smart_loss",
                 {"B": 2, "T": 3, "D": 4, "H": 5, "C": 3, "lengths": [3, 2], "noise_scale": 0.1,
                  "num_steps": 0, "step_size": 1e-3, "epsilon": 1e-6, "seed": 171}, 2.0,
                 ("smart_final",), "smart_loss with num_steps=0: the initial noise only",
                 atol=1e-6, rtol=1e-5, grades=(SMART_LOSS,)),
    visible_case("smart/visible_smart_loss", "smart_loss",
                 {"B": 2, "T": 3, "D": 4, "H": 5, "C": 3, "lengths": [3, 2], "noise_scale": 0.1,
                  "num_steps": 1, "step_size": 1.0, "epsilon": 1e-2, "seed": 172}, 2.0,
                 SMART_STEP_RULES, "smart_loss with one ascent step", atol=1e-6, rtol=1e-5,
                 grades=(SMART_LOSS,)),
]

### BEGIN STAFF


def _case(name, producer, params, rules, title, function):
    return Case(f"smart/{name}", producer, params, 2.0, rules, f"smart: {title}", atol=1e-6,
                rtol=1e-5, grades=(function,))


def _loss_params(**params):
    return {"B": 3, "T": 4, "D": 6, "H": 5, "C": 2, "lengths": [4, 1, 3], "noise_scale": 0.1,
            "step_size": 1.0, "epsilon": 1e-2, **params}


CASES += [
    _case("symmetric_kl_rows", "symmetric_kl", {"shape": [2, 3, 5], "scale": 3.0, "seed": 180},
          SMART_KL_RULES, "symmetric_kl of [2, 3, 5] logits: every leading position is a row",
          SMART_KL),
    _case("symmetric_kl_two_classes", "symmetric_kl", {"shape": [6, 2], "scale": 0.5,
                                                       "seed": 181},
          SMART_KL_RULES, "symmetric_kl of two classes, close distributions", SMART_KL),
    _case("smart_loss_two_steps", "smart_loss", _loss_params(num_steps=2, seed=182),
          SMART_STEP_RULES, "smart_loss with two ascent steps", SMART_LOSS),
    _case("smart_loss_defaults", "smart_loss",
          _loss_params(noise_scale=1e-5, num_steps=1, step_size=1e-3, epsilon=1e-6, seed=183),
          SMART_STEP_RULES, "smart_loss with the scripts' noise, step size and epsilon",
          SMART_LOSS),
    _case("smart_loss_no_step", "smart_loss", _loss_params(num_steps=0, C=4, seed=184),
          ("smart_final",), "smart_loss with num_steps=0, four classes", SMART_LOSS),
]
# name -> (rule, file, reference text, mutated text)
MUTANTS = {
    "smart_kl_not_detached": (
        "smart_kl_directions", "training/smart.py",
        "fixed_input, fixed_target = input_logp.detach(), target_logp.detach()",
        "fixed_input, fixed_target = input_logp, target_logp"),
    "smart_kl_summed_over_rows": (
        "smart_kl_reduction", "training/smart.py",
        "return (towards_input + towards_target).mean()",
        "return (towards_input + towards_target).sum()"),
    "smart_descent": (
        "smart_ascent", "training/smart.py",
        "step = noise + step_size * gradient  # (B, T, D)",
        "step = noise - step_size * gradient"),
    "smart_l2_norm": (
        "smart_normalise", "training/smart.py",
        "norm = step.abs().amax(dim=-1, keepdim=True)  # (B, T, 1), the infinity norm",
        "norm = step.norm(dim=-1, keepdim=True)"),
    "smart_final_clean_detached": (
        "smart_final", "training/smart.py",
        "return symmetric_kl(eval_fn(embeddings + noise), clean_logits)\n",
        "return symmetric_kl(eval_fn(embeddings + noise), clean_logits.detach())\n"),
}
### END STAFF

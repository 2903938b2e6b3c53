"""Hidden cases for SMART (handout 7.7, staff-only): `symmetric_kl` on other shapes and
scales (rows of a 3-D batch included), `smart_loss` with more steps, the scripts' default
step and epsilon, and padded rows."""

from __future__ import annotations

from autograder.case import Case
from autograder.cases.visible import SMART_KL, SMART_KL_RULES, SMART_LOSS, SMART_STEP_RULES


def _case(name, producer, params, rules, title, function):
    return Case(f"smart/{name}", producer, params, 2.0, rules, f"smart: {title}", atol=1e-6,
                rtol=1e-5, grades=(function,))


def _loss_params(**params):
    return {"B": 3, "T": 4, "D": 6, "H": 5, "C": 2, "lengths": [4, 1, 3], "noise_scale": 0.1,
            "step_size": 1.0, "epsilon": 1e-2, **params}


CASES = [
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

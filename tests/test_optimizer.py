"""AdamW against a float64 hand computation of the handout's rule, and its edge cases."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import optimizer_test
from conftest import REPO
from optimizer import AdamW


def hand_adamw(p0: np.ndarray, grads: list[np.ndarray], lr: float, betas: tuple[float, float],
               eps: float, weight_decay: float, correct_bias: bool) -> np.ndarray:
    """The update rule of the handout, written out in float64 numpy."""
    b1, b2 = betas
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t) if correct_bias else lr
        p = p - alpha * m / (np.sqrt(v) + eps)
        p = p - lr * weight_decay * p
    return p


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("correct_bias", [True, False])
def test_matches_float64_hand_computation_over_1000_steps(weight_decay, correct_bias):
    rng = np.random.default_rng(1)
    p0 = rng.normal(size=(4, 3))
    grads = [rng.normal(size=(4, 3)) * rng.uniform(0.01, 3.0) for _ in range(1000)]
    hyper = dict(lr=3e-3, betas=(0.85, 0.995), eps=1e-6, weight_decay=weight_decay,
                 correct_bias=correct_bias)
    param = torch.nn.Parameter(torch.tensor(p0, dtype=torch.float64))
    opt = AdamW([param], **hyper)
    for g in grads:
        param.grad = torch.tensor(g)
        opt.step()
    expected = hand_adamw(p0, grads, **hyper)
    np.testing.assert_allclose(param.detach().numpy(), expected, atol=1e-7, rtol=0)
    state = opt.state[param]
    assert state["step"] == 1000
    assert set(state) == {"step", "exp_avg", "exp_avg_sq"}


def test_agrees_with_torch_adamw_where_the_rules_coincide():
    """With eps=0 and no weight decay, the handout's rule is torch.optim.AdamW's (1e-12, f64)."""
    rng = np.random.default_rng(2)
    ours = torch.nn.Parameter(torch.tensor(rng.normal(size=(5,))))
    theirs = torch.nn.Parameter(ours.detach().clone())
    opt_ours = AdamW([ours], lr=1e-2, eps=0.0)
    opt_theirs = torch.optim.AdamW([theirs], lr=1e-2, eps=0.0, weight_decay=0.0)
    for _ in range(200):
        g = torch.tensor(rng.normal(size=(5,)))
        ours.grad, theirs.grad = g.clone(), g.clone()
        opt_ours.step()
        opt_theirs.step()
    torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=0)


def test_param_groups_and_params_without_grad():
    a = torch.nn.Parameter(torch.ones(3))
    b = torch.nn.Parameter(torch.ones(3))
    frozen = torch.nn.Parameter(torch.ones(3))
    opt = AdamW([{"params": [a], "lr": 0.1}, {"params": [b, frozen], "lr": 0.01}])
    a.grad, b.grad = torch.ones(3), torch.ones(3)
    opt.step()
    # The first bias-corrected step moves each coordinate by lr * (1 - eps / sqrt(v)) ~ lr.
    torch.testing.assert_close(a, torch.full((3,), 0.9), atol=1e-5, rtol=0)
    torch.testing.assert_close(b, torch.full((3,), 0.99), atol=1e-5, rtol=0)
    assert torch.equal(frozen, torch.ones(3))
    assert frozen not in opt.state


def test_closure_loss_is_returned():
    p = torch.nn.Parameter(torch.ones(2))
    opt = AdamW([p])

    def closure():
        opt.zero_grad()
        loss = (p**2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 2.0


def test_sparse_gradients_are_refused():
    embedding = torch.nn.Embedding(10, 3, sparse=True)
    embedding(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse"):
        AdamW(embedding.parameters()).step()


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-1.0), "Invalid learning rate: -1.0"),
    (dict(betas=(1.0, 0.999)), "Invalid beta parameter: 1.0"),
    (dict(betas=(0.9, -0.1)), "Invalid beta parameter: -0.1"),
    (dict(eps=-1e-8), "Invalid epsilon value"),
    (dict(weight_decay=-0.1), "Invalid weight_decay value"),
])
def test_constructor_validates(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdamW([torch.nn.Parameter(torch.ones(1))], **kwargs)


def test_reference_file_is_current():
    """optimizer_test.npy is what the reference produces (regenerate with `python
    optimizer_test.py --regenerate`), within a quarter of the script's tolerance: CPUs
    differ in the last bits, and a correct AdamW on another machine must keep the rest as
    margin."""
    reference = torch.from_numpy(np.load(REPO / "optimizer_test.npy", allow_pickle=False))
    actual = optimizer_test.train_linear(AdamW)
    assert actual.dtype == reference.dtype and actual.shape == reference.shape
    assert torch.allclose(actual, reference, atol=optimizer_test.ATOL / 4,
                          rtol=optimizer_test.RTOL / 4), (actual - reference).abs().max()


def test_optimizer_test_script_passes():
    result = subprocess.run([sys.executable, "optimizer_test.py"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Optimizer test passed!" in result.stdout

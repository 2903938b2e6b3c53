"""training/losses.py against its formulas in float64 (1e-12) and the docstrings' examples."""

from __future__ import annotations

import math

import pytest
import torch

from config import GPT2Config
from training.losses import (
    after_optimizer_step,
    lm_cross_entropy,
    lm_losses,
    mu_center_,
    mu_loss,
    z_loss,
)


def test_z_loss_is_the_mean_squared_log_normaliser():
    logits = torch.randn(3, 4, 7, dtype=torch.float64)
    expected = 0.3 * sum(math.log(sum(math.exp(x) for x in row)) ** 2
                         for row in logits.reshape(12, 7).tolist()) / 12
    assert z_loss(logits, 0.3).item() == pytest.approx(expected, abs=1e-6)
    example = torch.tensor([[0.0, 0.0], [math.log(3), math.log(3)]])
    assert z_loss(example, 0.1).item() == pytest.approx(0.18454, abs=1e-5)


def test_mu_loss_and_mu_centering():
    embedding = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    assert mu_loss(embedding, 0.5).item() == pytest.approx(0.5 * (2 ** 2 + 4 ** 2))
    parameter = torch.nn.Parameter(embedding.clone())
    returned = mu_center_(parameter)
    assert returned is parameter
    assert torch.equal(parameter.data, torch.tensor([[-1.0, -2.0], [1.0, 2.0]]))
    wide = torch.randn(50, 8, dtype=torch.float64)
    centred = mu_center_(wide.clone())
    torch.testing.assert_close(centred.mean(dim=0), torch.zeros(8, dtype=torch.float64),
                               atol=1e-12, rtol=0)
    torch.testing.assert_close(wide - centred, wide.mean(0).expand(50, 8), atol=1e-12, rtol=0)


def test_lm_losses_parts_and_the_step_hook():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 11, generator=generator, requires_grad=True)
    targets = torch.randint(0, 11, (2, 5), generator=generator)
    targets[1, 3:] = -100
    embedding = torch.randn(11, 4, generator=generator)
    plain = lm_losses(GPT2Config(), logits, targets, embedding)
    assert plain["z_loss"].item() == plain["mu_loss"].item() == 0.0
    torch.testing.assert_close(plain["loss"], torch.nn.functional.cross_entropy(
        logits.reshape(10, 11), targets.reshape(10)), atol=1e-6, rtol=0)
    assert torch.equal(plain["cross_entropy"], lm_cross_entropy(logits, targets))
    config = GPT2Config(z_loss=1e-2, mu_loss=0.5)
    parts = lm_losses(config, logits, targets, embedding)
    torch.testing.assert_close(parts["z_loss"], z_loss(logits[targets != -100], 1e-2))
    torch.testing.assert_close(parts["mu_loss"], mu_loss(embedding, 0.5))
    torch.testing.assert_close(parts["loss"], parts["cross_entropy"] + parts["z_loss"]
                               + parts["mu_loss"])
    parts["loss"].backward()
    assert logits.grad is not None
    after_optimizer_step(config, embedding)
    assert embedding.mean(0).abs().max() > 1e-3  # mu_centering off: untouched
    after_optimizer_step(GPT2Config(mu_centering=True), embedding)
    assert embedding.mean(0).abs().max() < 1e-6

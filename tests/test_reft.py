"""ReFT (modules/reft.py, handout 7.5) against LoReFT's formula, and how it attaches.

pyreft itself is not installed: it pins transformers==4.45.1, which the kit's
transformers pin excludes, so the intervention is checked against its formula
h + (h W^T + b - h R^T) R at 1e-6 (float32; 1e-12 in float64), and R R^T = I at 1e-5 after
50 optimizer steps, with weight decay too.
"""

import copy
import re

import pytest
import torch

from config import GPT2Config
from models.generate import generate
from models.gpt2 import GPT2Model
from modules.attention import KVCache
from modules.reft import (
    LoReFTIntervention,
    apply_reft,
    edited_positions,
    parse_layers,
    parse_positions,
)
from optimizer import AdamW
from tests.conftest import TINY


def formula(module: LoReFTIntervention, h: torch.Tensor) -> torch.Tensor:
    W, b, R = module.learned_source.weight, module.learned_source.bias, module.R
    return h + (h @ W.T + b - h @ R.T) @ R


def tiny_model(seed: int = 0) -> GPT2Model:
    torch.manual_seed(seed)
    return GPT2Model(GPT2Config(**TINY)).eval()


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_intervention_equals_the_formula(dtype, tol):
    torch.manual_seed(0)
    module = LoReFTIntervention(12, 3).to(dtype)
    h = torch.randn(2, 5, 12, dtype=dtype)
    torch.testing.assert_close(module(h), formula(module, h), atol=tol, rtol=tol)
    assert module.R.shape == (3, 12) and module.learned_source.weight.shape == (3, 12)
    torch.testing.assert_close(module.R @ module.R.T, torch.eye(3, dtype=dtype), atol=1e-6,
                               rtol=0)
    # Outside the subspace h is untouched: the edit lies in the row space of R.
    delta = module(h) - h
    torch.testing.assert_close(delta @ module.R.T @ module.R, delta, atol=tol * 10, rtol=0)


def test_bfloat16_intervention():
    torch.manual_seed(5)
    module = LoReFTIntervention(8, 2)
    h = torch.randn(3, 8)
    expected = formula(module, h)
    module.to(torch.bfloat16)
    out = module(h.bfloat16())
    assert out.dtype == torch.bfloat16 and module.R.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected, atol=0.05, rtol=0.05)


def test_worked_example_of_the_docstring():
    module = LoReFTIntervention(2, 1)
    with torch.no_grad():
        module.rotate_layer.weight = torch.tensor([[1.0, 0.0]])
        module.learned_source.weight.copy_(torch.tensor([[0.0, 1.0]]))
        module.learned_source.bias.copy_(torch.tensor([1.0]))
    assert module(torch.tensor([3.0, 5.0])).tolist() == pytest.approx([6.0, 5.0], abs=1e-6)


def test_R_stays_orthonormal_after_50_steps():
    torch.manual_seed(1)
    module = LoReFTIntervention(16, 4)
    h, target = torch.randn(8, 16), torch.randn(8, 16)
    optimizer = AdamW(module.parameters(), lr=5e-2)
    start = module.R.detach().clone()
    for _ in range(50):
        optimizer.zero_grad()
        ((module(h) - target) ** 2).mean().backward()
        optimizer.step()
    assert (module.R - start).abs().max() > 0.1  # R moved
    torch.testing.assert_close(module.R @ module.R.T, torch.eye(4), atol=1e-5, rtol=0)


@pytest.mark.parametrize("make_optimizer", [
    lambda parameters: torch.optim.AdamW(parameters, lr=1e-2, weight_decay=0.01),
    lambda parameters: torch.optim.SGD(parameters, lr=1e-1, weight_decay=1e-4),
], ids=["AdamW", "SGD"])
def test_R_stays_orthonormal_under_weight_decay(make_optimizer):
    """Weight decay shrinks R's parameter every step; R (the Gram-Schmidt rows of it) must
    not follow (torch's Householder `orthogonal` collapses to R = 0 at the first step)."""
    torch.manual_seed(1)
    module = LoReFTIntervention(16, 4)
    h, target = torch.randn(8, 16), torch.randn(8, 16)
    optimizer = make_optimizer(module.parameters())
    start = module.R.detach().clone()
    for _ in range(50):
        optimizer.zero_grad()
        ((module(h) - target) ** 2).mean().backward()
        optimizer.step()
    assert (module.R - start).abs().max() > 0.01  # R moved
    torch.testing.assert_close(module.R @ module.R.T, torch.eye(4), atol=1e-5, rtol=0)


def test_dropout_acts_on_the_edited_state_in_training_only():
    torch.manual_seed(2)
    module = LoReFTIntervention(6, 2, dropout=0.5)
    h = torch.randn(4, 6)
    module.train()
    torch.manual_seed(3)
    out = module(h)
    torch.manual_seed(3)
    kept = torch.nn.functional.dropout(formula(module, h), 0.5)
    torch.testing.assert_close(out, kept)
    module.eval()
    torch.testing.assert_close(module(h), formula(module, h))


@pytest.mark.parametrize("args, message", [
    ((8, 0), "rank must be an integer in \\[1, hidden_size=8\\], got 0"),
    ((8, 9), "got 9"),
    ((8, 2.0), "got 2.0"),
    ((0, 1), "hidden_size must be an integer >= 1, got 0"),
])
def test_bad_intervention_sizes_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        LoReFTIntervention(*args)
    with pytest.raises(ValueError, match="dropout must be in \\[0, 1\\), got 1.0"):
        LoReFTIntervention(8, 2, dropout=1.0)


def test_positions_and_layers():
    assert parse_positions("last") == (0, 1)
    assert parse_positions("last:3") == (0, 3)
    assert parse_positions("first+last") == (1, 1)
    assert parse_positions("first+last:2") == (2, 2)
    for bad in ("middle", "first", "last:0", "last:x", "first+last:-1", ""):
        with pytest.raises(ValueError, match=re.escape(f"ReFT positions {bad!r}")):
            parse_positions(bad)
    assert parse_layers("all", 3) == [0, 1, 2]
    assert parse_layers("2,0,2", 3) == [0, 2]
    for bad in ("3", "a", "0,,1", "-1"):
        with pytest.raises(ValueError, match=re.escape(f"ReFT layers {bad!r}")):
            parse_layers(bad, 3)
    right = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]])
    left = torch.tensor([[0, 1, 1, 1, 1]])
    assert edited_positions(right, 1, 2).tolist() == [[True, False, True, True, False],
                                                      [True, True, False, False, False]]
    assert edited_positions(left, 0, 1).tolist() == [[False, False, False, False, True]]


def test_apply_reft_edits_only_the_chosen_layers_and_positions():
    ids = torch.randint(0, TINY["vocab_size"], (2, 7), generator=torch.Generator().manual_seed(4))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    plain = tiny_model()
    before = plain(ids, mask)["last_hidden_state"]
    model = tiny_model()
    last_layer = TINY["num_hidden_layers"] - 1
    names = apply_reft(model, rank=2, layers=str(last_layer), positions="last")
    assert names == [f"gpt_layers.{last_layer}"]
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"reft.interventions.{last_layer}.{n}" for n in (
        "rotate_layer.parametrizations.weight.original", "learned_source.weight",
        "learned_source.bias")}
    D = TINY["hidden_size"]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 2 * (2 * D + 1)
    after = model(ids, mask)["last_hidden_state"]
    changed = (after - before).abs().amax(dim=-1) > 1e-6  # (B, T)
    assert changed.tolist() == [[False] * 6 + [True], [False] * 4 + [True, False, False]]
    # The edit is the intervention of the last layer's output, before the final LayerNorm.
    with pytest.raises(ValueError, match="already has ReFT interventions"):
        apply_reft(model)
    with pytest.raises(ValueError, match="ReFT layers '5'"):
        apply_reft(tiny_model(), layers="5")
    copied = copy.deepcopy(model)  # hooks follow the copy's own interventions
    with torch.no_grad():
        copied.reft.interventions[str(last_layer)].learned_source.bias.add_(1.0)
    torch.testing.assert_close(model(ids, mask)["last_hidden_state"], after)


def test_generation_edits_the_prompt_once():
    """With the KV cache the prompt's last token is edited when the prompt is encoded; a
    left-padded row generates what it generates alone."""
    model = tiny_model()
    apply_reft(model, rank=2, layers="all", positions="first+last")
    prompts = [[5, 6, 7, 8], [9, 10]]
    together = generate(model, prompts, max_new_tokens=4, eos_id=None)
    alone = [generate(model, [p], max_new_tokens=4, eos_id=None)[0] for p in prompts]
    assert together == alone
    ids = torch.tensor([prompts[0]])
    mask = torch.ones_like(ids)
    edited = model(ids, mask)["last_token"]
    cache = KVCache(model.config, 1, 8)
    torch.testing.assert_close(model(ids, mask, cache=cache)["last_token"], edited)
    assert (edited - tiny_model()(ids, mask)["last_token"]).abs().max() > 1e-3
    step = model(ids[:, :1], torch.ones(1, 5, dtype=torch.long), cache=cache)
    assert model.reft.where is None and step["last_token"].shape == (1, TINY["hidden_size"])


def test_dpo_and_a_bare_backbone_refuse_reft(capsys, tmp_path):
    import dpo
    from training.checkpoint import save_checkpoint
    from training.peft import load_backbone_checkpoint

    with pytest.raises(SystemExit):
        dpo.get_args(["--task", "quora", "--peft", "reft"])
    assert "--peft reft: DPO's reference is the policy" in capsys.readouterr().err
    path = tmp_path / "reft.pt"
    save_checkpoint({"model": {}, "config": {"peft": "reft"}}, path)
    with pytest.raises(ValueError, match="is a ReFT checkpoint"):
        load_backbone_checkpoint(tiny_model(), str(path))

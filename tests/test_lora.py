"""LoRA (modules/lora.py) against peft's LoRA on our own GPT2Model, and its contract.

Tolerances: ours vs peft in float64 at 1e-6 (outputs and adapter gradients; in float32 a
different order of the same products already differs by a few 1e-6); a fresh adapter and
merge/unmerge in float32 at 1e-5 (model equivalence) or exactly where no arithmetic differs.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from torch import nn

from classifier import GPT2SentimentClassifier
from config import GPT2Config
from models.gpt2 import GPT2Model
from modules.lora import LoRALinear, apply_lora, disable_adapters, lora_state_dict, merge_lora
from tests.conftest import TINY

TARGETS = ("query", "value", "interm_dense")


def tiny_model(seed: int = 0, dtype: torch.dtype = torch.float32) -> GPT2Model:
    torch.manual_seed(seed)
    return GPT2Model(GPT2Config(**TINY)).to(dtype).eval()


def batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, TINY["vocab_size"], (3, 9), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0  # a right-padded row
    return ids, mask


def logits_of(model: GPT2Model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return model.hidden_state_to_token(model(ids, mask)["last_hidden_state"])  # (B, T, V)


def peft_and_ours(rslora: bool) -> tuple[GPT2Model, GPT2Model]:
    """The same float64 GPT2Model with peft's adapters and with ours, adapter tensors equal."""
    theirs = tiny_model(dtype=torch.float64)
    ours = copy.deepcopy(theirs)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=list(TARGETS), lora_dropout=0.0,
                        init_lora_weights=False, use_rslora=rslora)
    torch.manual_seed(3)
    inject_adapter_in_model(config, theirs)
    names = apply_lora(ours, TARGETS, r=4, alpha=8, rslora=rslora)
    assert len(names) == TINY["num_hidden_layers"] * len(TARGETS)
    with torch.no_grad():
        for name in names:
            mine, peft_layer = ours.get_submodule(name), theirs.get_submodule(name)
            assert isinstance(peft_layer, LoraLayer)
            assert mine.scaling == peft_layer.scaling["default"]
            mine.lora_A.copy_(peft_layer.lora_A["default"].weight)  # (r, in)
            mine.lora_B.copy_(peft_layer.lora_B["default"].weight)  # (out, r)
    return theirs, ours


@pytest.mark.parametrize("rslora", [False, True])
def test_equals_peft_outputs_gradients_and_merge(rslora):
    theirs, ours = peft_and_ours(rslora)
    ids, mask = batch()
    weights = torch.randn(3, 9, TINY["vocab_size"], dtype=torch.float64,
                          generator=torch.Generator().manual_seed(4))
    out_theirs, out_ours = logits_of(theirs, ids, mask), logits_of(ours, ids, mask)
    torch.testing.assert_close(out_ours, out_theirs, rtol=0, atol=1e-6)
    (out_theirs * weights).sum().backward()
    (out_ours * weights).sum().backward()
    for name, module in ours.named_modules():
        if isinstance(module, LoRALinear):
            peft_layer = theirs.get_submodule(name)
            for mine, their in ((module.lora_A, peft_layer.lora_A["default"].weight),
                                (module.lora_B, peft_layer.lora_B["default"].weight)):
                assert mine.grad.abs().max() > 0
                torch.testing.assert_close(mine.grad, their.grad, rtol=0, atol=1e-6)

    for module in theirs.modules():
        if isinstance(module, LoraLayer):
            module.merge()
    merged_names = merge_lora(ours)
    assert not any(isinstance(m, LoRALinear) for m in ours.modules())
    for name in merged_names:
        torch.testing.assert_close(ours.get_submodule(name).weight,
                                   theirs.get_submodule(name).base_layer.weight, rtol=0,
                                   atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(logits_of(ours, ids, mask), logits_of(theirs, ids, mask),
                                   rtol=0, atol=1e-6)
        torch.testing.assert_close(logits_of(ours, ids, mask), out_theirs.detach(), rtol=0,
                                   atol=1e-6)


def test_fresh_adapter_changes_nothing_and_has_the_peft_init():
    model = tiny_model()
    ids, mask = batch()
    with torch.no_grad():
        before = logits_of(model, ids, mask)
        apply_lora(model, r=8, alpha=16)
        after = logits_of(model, ids, mask)
    torch.testing.assert_close(after, before, rtol=0, atol=0)  # lora_B = 0 adds exact zeros
    layer = model.gpt_layers[0].self_attention.query
    assert isinstance(layer, LoRALinear) and layer.scaling == 2.0
    assert layer.lora_A.shape == (8, TINY["hidden_size"])
    assert layer.lora_B.shape == (TINY["hidden_size"], 8)
    assert torch.equal(layer.lora_B, torch.zeros_like(layer.lora_B))
    bound = 1 / TINY["hidden_size"] ** 0.5  # kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(in), ...)
    assert layer.lora_A.abs().max() <= bound and layer.lora_A.std() > bound / 4


def test_only_adapters_and_the_head_get_gradients():
    torch.manual_seed(0)
    model = GPT2SentimentClassifier(GPT2Model(GPT2Config(**TINY)), num_labels=3,
                                    hidden_dropout_prob=0.0, fine_tune_mode="full-model")
    apply_lora(model, ("query", "value"), r=2, alpha=4)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    expected_head = {"classifier.weight", "classifier.bias"}
    assert expected_head <= trainable
    assert all(n in expected_head or n.endswith(("lora_A", "lora_B")) for n in trainable)
    ids, mask = batch()
    for module in model.modules():  # non-zero B so that A receives a gradient too
        if isinstance(module, LoRALinear):
            nn.init.normal_(module.lora_B)
    F.cross_entropy(model(ids, mask), torch.tensor([0, 1, 2])).backward()
    for name, param in model.named_parameters():
        assert (param.grad is not None) == (name in trainable), name
        if param.grad is not None:
            assert param.grad.abs().max() > 0, name
    assert set(lora_state_dict(model)) == {n for n in trainable if n not in expected_head}


def test_forward_rule_dropout_on_the_branch_input_only():
    base = nn.Linear(2, 2)
    with torch.no_grad():
        base.weight.copy_(torch.eye(2))
        base.bias.zero_()
    layer = LoRALinear(base, r=1, alpha=2)
    with torch.no_grad():
        layer.lora_A.copy_(torch.tensor([[1.0, 1.0]]))
        layer.lora_B.copy_(torch.tensor([[1.0], [0.0]]))
    x = torch.tensor([[1.0, 2.0]])
    assert torch.equal(layer(x), torch.tensor([[7.0, 2.0]]))  # the docstring's example
    dropped = LoRALinear(copy.deepcopy(base), r=1, alpha=2, dropout=0.5).train()
    with torch.no_grad():
        dropped.lora_A.copy_(layer.lora_A)
        dropped.lora_B.copy_(layer.lora_B)
    torch.manual_seed(0)
    outputs = torch.stack([dropped(x) for _ in range(64)])  # (64, 1, 2)
    assert torch.equal(outputs[:, 0, 1], torch.full((64,), 2.0))  # base(x) never dropped
    assert set(outputs[:, 0, 0].tolist()) <= {1.0, 5.0, 9.0, 13.0}  # x_i dropped or doubled


def test_merge_unmerge_disable_and_layout():
    model = tiny_model()
    apply_lora(model, ("query", "value"), r=4, alpha=8)
    for module in model.modules():
        if isinstance(module, LoRALinear):
            nn.init.normal_(module.lora_B, std=0.1)
    ids, mask = batch()
    layer = model.gpt_layers[1].self_attention.value
    weight_before = layer.base.weight.detach().clone()
    strides = layer.base.weight.stride()
    with torch.no_grad():
        adapted = logits_of(model, ids, mask)
        with disable_adapters(model):
            reference = logits_of(model, ids, mask)
        assert (adapted - reference).abs().max() > 1e-3
        layer.merge()
        assert layer.base.weight.stride() == strides  # input-major storage kept
        torch.testing.assert_close(logits_of(model, ids, mask), adapted, rtol=0, atol=1e-5)
        with pytest.raises(RuntimeError, match="merged"), disable_adapters(model):
            pass
        layer.unmerge()
        torch.testing.assert_close(layer.base.weight, weight_before, rtol=0, atol=1e-6)
        torch.testing.assert_close(logits_of(model, ids, mask), adapted, rtol=0, atol=1e-5)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="no nn.Linear named like \\['qkv'\\]"):
        apply_lora(tiny_model(), ("qkv",))
    with pytest.raises(ValueError, match="rank r must be an integer >= 1, got 0"):
        LoRALinear(nn.Linear(2, 2), r=0, alpha=1)


def test_task_checkpoints_hold_adapters_and_head_and_load_onto_a_backbone(tmp_path):
    """training.peft: a LoRA task checkpoint (as training.finetune.fit writes it) round-trips;
    DPO's loader merges it into a bare GPT2Model (weights equal to merging in place, at 0:
    the same operations) and takes the backbone of a whole task state dict."""
    import argparse

    from training.checkpoint import load_checkpoint, save_checkpoint
    from training.peft import checkpoint_state, load_backbone_checkpoint, load_weights

    args = argparse.Namespace(peft="lora", lora_targets=["query", "value"], lora_r=2,
                              lora_alpha=4.0, lora_dropout=0.0)
    torch.manual_seed(0)
    model = GPT2SentimentClassifier(GPT2Model(GPT2Config(**TINY)), 3, 0.0, "full-model")
    pristine = copy.deepcopy(model.gpt)
    apply_lora(model, args.lora_targets, r=2, alpha=4.0)
    for module in model.modules():
        if isinstance(module, LoRALinear):
            nn.init.normal_(module.lora_B)
    save_checkpoint({"model": checkpoint_state(model, "lora", model.state_dict()),
                     "config": vars(args)}, tmp_path / "lora.pt")
    saved = load_checkpoint(tmp_path / "lora.pt")
    assert set(saved["model"]) == {n for n, p in model.named_parameters() if p.requires_grad}
    restored = GPT2SentimentClassifier(copy.deepcopy(pristine), 3, 0.0, "full-model")
    apply_lora(restored, args.lora_targets, r=2, alpha=4.0)
    load_weights(restored, "lora", saved["model"])
    ids, mask = batch()
    with torch.no_grad():
        torch.testing.assert_close(restored.eval()(ids, mask), model.eval()(ids, mask), rtol=0,
                                   atol=0)

    backbone = copy.deepcopy(pristine)
    load_backbone_checkpoint(backbone, tmp_path / "lora.pt")
    merge_lora(model)
    for name, param in backbone.named_parameters():
        assert param.requires_grad
        torch.testing.assert_close(param, model.gpt.get_parameter(name), rtol=0, atol=0)

    save_checkpoint({"model": checkpoint_state(model, "none", model.state_dict()),
                     "config": {"peft": "none"}}, tmp_path / "full.pt")  # "gpt.*" and the head
    other = GPT2Model(GPT2Config(**TINY))
    load_backbone_checkpoint(other, tmp_path / "full.pt")
    for name, param in other.named_parameters():
        torch.testing.assert_close(param, model.gpt.get_parameter(name), rtol=0, atol=0)

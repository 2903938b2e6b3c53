"""SMART (handout 7.7) against smart-pytorch, the trusted peer: `symmetric_kl` equals its
`sym_kl_loss` (sum reduction divided by the rows), `smart_loss` and its gradients with
respect to the model equal its `SMARTLoss` (noise fixed to ours) at 1e-6; the mean
teacher follows its formula; the task scripts take the flags, refuse bad values and log
the terms."""

from __future__ import annotations

import argparse
import json
import math

import pytest
import torch
from smart_pytorch import SMARTLoss, sym_kl_loss

import classifier
import paraphrase_detection
from classifier import GPT2SentimentClassifier
from config import GPT2Config
from conftest import TINY
from models.gpt2 import GPT2Model
from training.args import add_optimizer_args, add_quantize_args
from training.finetune import fit_and_write, make_loader
from training.smart import (
    MeanTeacher,
    Smart,
    add_smart_args,
    replaced_output,
    smart_loss,
    symmetric_kl,
)

NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def peer_kl(input_logits, target_logits):
    """smart-pytorch's sym_kl_loss, its sum reduction divided by the rows."""
    return sym_kl_loss(input_logits, target_logits) / input_logits.shape[0]


def tiny_classifier(seed: int = 0, dtype: torch.dtype = torch.float32
                    ) -> GPT2SentimentClassifier:
    torch.manual_seed(seed)
    return GPT2SentimentClassifier(GPT2Model(GPT2Config(**TINY, **NO_DROPOUT)), 3, 0.0,
                                   "full-model").to(dtype)


def tiny_batch(seed: int = 1, B: int = 3, T: int = 5) -> dict:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, TINY["vocab_size"] - 1, (B, T), generator=generator)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 3:] = 0
    return {"input_ids": ids, "attention_mask": mask,
            "labels": torch.randint(0, 3, (B,), generator=generator)}


def embedding_eval_fn(model, batch):
    """The model from its word embeddings on (the perturbation's entry point)."""
    def eval_fn(embeddings):
        with replaced_output(model.gpt.word_embedding, embeddings):
            return model(batch["input_ids"], batch["attention_mask"])
    return eval_fn


def test_symmetric_kl_equals_sym_kl_loss_value_and_gradients():
    generator = torch.Generator().manual_seed(0)
    a = (torch.randn(4, 6, generator=generator, dtype=torch.float64) * 3).requires_grad_(True)
    b = (torch.randn(4, 6, generator=generator, dtype=torch.float64) * 3).requires_grad_(True)
    ours = symmetric_kl(a, b)
    ours_grads = torch.autograd.grad(ours, (a, b))
    theirs = peer_kl(a, b)
    theirs_grads = torch.autograd.grad(theirs, (a, b))
    torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=1e-12)
    for mine, peer in zip(ours_grads, theirs_grads, strict=True):
        torch.testing.assert_close(mine, peer, atol=1e-12, rtol=1e-12)


def test_symmetric_kl_docstring_example():
    value = symmetric_kl(torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, math.log(3.0)]]))
    assert value.item() == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5)
                                         + 0.5 * math.log(2.0) + 0.5 * math.log(2 / 3), abs=1e-6)
    assert round(value.item(), 4) == 0.2747


@pytest.mark.parametrize("num_steps, step_size, dtype", [(1, 1e-3, torch.float32),
                                                         (1, 1e-3, torch.float64),
                                                         (2, 0.5, torch.float64)])
def test_smart_loss_equals_smart_pytorch_value_and_model_gradients(num_steps, step_size, dtype):
    """In float32 the two agree at 1e-6 after one step; a second step of the noise, which
    the normalisation makes of unit size, amplifies float32 rounding to a few 1e-6, so the
    algorithm is compared in float64 there."""
    noise_var, seed = 1e-3, 5
    grads, losses = [], []
    for peer in (False, True):
        model = tiny_classifier(dtype=dtype)
        batch = tiny_batch()
        eval_fn = embedding_eval_fn(model, batch)
        embeddings = model.gpt.word_embedding(batch["input_ids"])
        clean = eval_fn(embeddings)
        torch.manual_seed(seed)
        if peer:  # SMARTLoss draws randn_like(embed) * noise_var itself
            loss = SMARTLoss(eval_fn, peer_kl, num_steps=num_steps, step_size=step_size,
                             epsilon=1e-6, noise_var=noise_var)(embeddings, clean)
        else:
            noise = torch.randn_like(embeddings) * noise_var
            loss = smart_loss(eval_fn, embeddings, clean, noise=noise, num_steps=num_steps,
                              step_size=step_size, epsilon=1e-6)
        loss.backward()
        losses.append(loss.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    assert losses[0] > 0
    torch.testing.assert_close(losses[0], losses[1], atol=1e-6, rtol=1e-6)
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-6, rtol=1e-6,
                                   msg=name)


def smart_args(**flags) -> argparse.Namespace:
    """The SMART flags as parsed, beside the defaults of the other fine-tuning flags the
    loop reads (the optimizer's, the quantization's)."""
    parser = argparse.ArgumentParser()
    add_smart_args(parser)
    add_optimizer_args(parser)
    add_quantize_args(parser)
    return parser.parse_args([text for key, value in flags.items()
                              for text in (f"--{key}", str(value))])


def test_smart_objective_parts_and_the_mean_teacher():
    model = tiny_classifier()
    batch = tiny_batch()
    smart = Smart(model, smart_args(smart_weight=2.0, smart_noise_var=1e-4,
                                    bregman_weight=0.5, bregman_beta=0.9))
    torch.manual_seed(3)
    parts = smart.loss(model, batch)
    assert set(parts) == {"loss", "cross_entropy", "smart", "bregman"}
    assert parts["bregman"].item() == pytest.approx(0.0, abs=1e-7)  # the teacher is a copy
    torch.manual_seed(3)
    eval_fn = embedding_eval_fn(model, batch)
    embeddings = model.gpt.word_embedding(batch["input_ids"])
    clean = eval_fn(embeddings)
    expected = smart_loss(eval_fn, embeddings, clean,
                          noise=torch.randn_like(embeddings) * 1e-4)
    torch.testing.assert_close(parts["smart"], expected, atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(parts["loss"], parts["cross_entropy"] + 2.0 * parts["smart"]
                               + 0.5 * parts["bregman"])

    before = [p.detach().clone() for p in smart.teacher.model.parameters()]
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1)
    smart.after_step()
    for old, new, student in zip(before, smart.teacher.model.parameters(), model.parameters(),
                                 strict=True):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * student.detach())
    assert smart.loss(model, batch)["bregman"] > 0


def test_the_teacher_follows_trainable_parameters_only():
    model = GPT2SentimentClassifier(GPT2Model(GPT2Config(**TINY)), 2, 0.0, "last-linear-layer")
    teacher = MeanTeacher(model, 0.5)
    assert len(teacher.mine) == 2  # the head's weight and bias
    assert not any(p.requires_grad for p in teacher.model.parameters())


def test_a_forward_that_skips_word_embedding_is_refused():
    model = tiny_classifier()
    batch = tiny_batch()
    gpt = model.gpt
    gpt.embed = lambda ids, positions=None: torch.nn.functional.embedding(
        ids, gpt.word_embedding.weight) + gpt.pos_embedding(gpt.position_ids[:, :ids.shape[1]])
    with pytest.raises(RuntimeError, match="must call self.word_embedding"):
        Smart(model, smart_args(smart_weight=1.0)).loss(model, batch)


@pytest.mark.parametrize("script", [classifier, paraphrase_detection])
@pytest.mark.parametrize("flag, value", [("smart_weight", "-1"), ("smart_noise_var", "0"),
                                         ("smart_step_size", "nan"), ("smart_epsilon", "-1e-6"),
                                         ("bregman_weight", "-0.5"), ("bregman_beta", "1")])
def test_bad_flags_are_refused_naming_the_value(script, flag, value, capsys):
    with pytest.raises(SystemExit):
        script.get_args([f"--{flag}={value}"])
    error = capsys.readouterr().err
    assert f"--{flag}" in error and value in error, error


def test_fit_logs_the_terms(tmp_path, capsys):
    model = tiny_classifier()
    examples = [tiny_batch(seed) for seed in range(4)]
    args = argparse.Namespace(**vars(smart_args(smart_weight=1.0, bregman_weight=1.0)),
                              epochs=2, eval_batch_size=1, peft="none",
                              checkpoint_dir=str(tmp_path / "out"),
                              out_dir=str(tmp_path / "predictions"))

    def collate(rows):
        batch = rows[0]
        return {**batch, "ids": [f"id{i}" for i in range(len(batch["labels"]))]}

    written = {}
    fit_and_write(model, make_loader(examples, collate, 1), {"dev": examples[:2],
                                                             "test": examples[2:]},
                  collate, "tiny", "tiny.pt", args, torch.device("cpu"), 1e-3,
                  lambda gold, predicted: (0.5, 0.5),
                  lambda path, ids, predictions: written.setdefault(path, predictions))
    rows = [json.loads(line) for line in (tmp_path / "out" / "tiny-metrics.jsonl").open()]
    assert len(rows) == 2
    for row in rows:
        assert {"train_cross_entropy", "train_smart", "train_bregman"} <= set(row)
        assert row["train_smart"] > 0
        assert row["train_loss"] == pytest.approx(row["train_cross_entropy"]
                                                  + row["train_smart"] + row["train_bregman"])
    assert rows[1]["train_bregman"] > 0  # the teacher lags the student after a step
    out = capsys.readouterr().out
    assert "[tiny] epoch 2/2: train loss" in out and "(cross-entropy" in out and "smart " in out

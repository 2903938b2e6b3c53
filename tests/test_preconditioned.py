"""Muon and Shampoo (handout 7.6) against float64 replicas of their rules, Muon against
`torch.optim.Muon` itself, the refusals of bad hyper-parameters, and `--optimizer
muon|shampoo` in the one training loop (which parameters each optimizer takes, each group's
schedule, the flags and a resume)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

import classifier
import pretrain
from config import GPT2Config
from data import prepare_lm
from models.gpt2 import GPT2Model
from models.lm import CausalLM
from optimizer import AdamW, Muon, Shampoo, newton_schulz
from training.batches import TokenBatches
from training.optimizers import block_matrices, build_optimizers
from training.schedule import lr_at
from training.trainer import TrainConfig, Trainer

SHAPES = {"tall": (7, 4), "wide": (4, 7), "square": (5, 5)}


def replica_newton_schulz(G: np.ndarray, steps: int, coefficients, eps: float) -> np.ndarray:
    """`torch.optim.Muon`'s `_zeropower_via_newtonschulz` in float64 (its bfloat16 cast left
    out)."""
    a, b, c = coefficients
    tall = G.shape[0] > G.shape[1]
    X = G.T if tall else G
    X = X / max(np.linalg.norm(X), eps)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X.T if tall else X


def replica_muon(p0: np.ndarray, grads: list[np.ndarray], lr: float, momentum: float,
                 nesterov: bool, weight_decay: float, adjust_lr_fn: str | None,
                 ns_steps: int = 5, coefficients=(3.4445, -4.7750, 2.0315),
                 eps: float = 1e-7) -> np.ndarray:
    """`torch.optim.Muon`'s `_single_tensor_muon` in float64 numpy."""
    rows, cols = p0.shape
    ratio = (0.2 * math.sqrt(max(rows, cols)) if adjust_lr_fn == "match_rms_adamw"
             else math.sqrt(max(1, rows / cols)))
    p, buf = p0.copy(), np.zeros_like(p0)
    for g in grads:
        buf = buf + (1 - momentum) * (g - buf)  # lerp
        update = g + momentum * (buf - g) if nesterov else buf
        update = replica_newton_schulz(update, ns_steps, coefficients, eps)
        p = p * (1 - lr * weight_decay)
        p = p - lr * ratio * update
    return p


def seeded(shape, steps, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape), [rng.normal(size=shape) * rng.uniform(0.1, 3.0)
                                    for _ in range(steps)]


def run(optimizer_class, p0, grads, dtype=torch.float64, **hyper) -> list[torch.Tensor]:
    """The parameter after each step of `optimizer_class` fed `grads`."""
    param = torch.nn.Parameter(torch.tensor(p0, dtype=dtype))
    optimizer = optimizer_class([param], **hyper)
    after = []
    for g in grads:
        param.grad = torch.tensor(g, dtype=dtype)
        optimizer.step()
        after.append(param.detach().clone())
    return after


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("adjust_lr_fn", [None, "match_rms_adamw"])
def test_muon_matches_a_float64_replica_of_torch_muon(shape, nesterov, adjust_lr_fn):
    p0, grads = seeded(SHAPES[shape], 10, seed=len(shape) + nesterov)
    hyper = dict(lr=0.03, momentum=0.9, nesterov=nesterov, weight_decay=0.1,
                 adjust_lr_fn=adjust_lr_fn)
    ours = run(Muon, p0, grads, **hyper)[-1].numpy()
    np.testing.assert_allclose(ours, replica_muon(p0, grads, **hyper), atol=1e-10, rtol=0)


def test_muon_original_adjustment_and_a_group_without_gradient():
    p0, grads = seeded((6, 3), 10, seed=5)
    hyper = dict(lr=0.02, momentum=0.95, nesterov=True, weight_decay=0.0)
    ours = run(Muon, p0, grads, adjust_lr_fn="original", **hyper)[-1].numpy()
    np.testing.assert_allclose(ours, replica_muon(p0, grads, adjust_lr_fn=None, **hyper),
                               atol=1e-10, rtol=0)
    still = torch.nn.Parameter(torch.ones(3, 3, dtype=torch.float64))
    Muon([still]).step()
    assert torch.equal(still, torch.ones(3, 3, dtype=torch.float64))


@pytest.mark.parametrize("shape", [(64, 32), (32, 96)])
def test_muon_in_float32_points_where_torch_muon_does(shape):
    """torch.optim.Muon orthogonalises in bfloat16, ours in the gradient's dtype: the updates
    agree in direction (cosine >= 0.99) at every one of 10 steps."""
    p0, grads = seeded(shape, 10, seed=7)
    hyper = dict(lr=0.02, momentum=0.95, nesterov=True, weight_decay=0.01)
    ours = run(Muon, p0, grads, dtype=torch.float32, **hyper)
    theirs = run(torch.optim.Muon, p0, grads, dtype=torch.float32, **hyper)
    start = torch.tensor(p0, dtype=torch.float32)
    steps = zip([start, *ours[:-1]], [start, *theirs[:-1]], ours, theirs, strict=True)
    for before_ours, before_theirs, a, b in steps:
        cosine = torch.nn.functional.cosine_similarity((a - before_ours).flatten(),
                                                       (b - before_theirs).flatten(), dim=0)
        assert cosine >= 0.99, float(cosine)


def test_newton_schulz_singular_values_of_a_random_256_by_768_matrix():
    G = torch.randn(256, 768, generator=torch.Generator().manual_seed(0))
    for matrix in (G, G.T):
        X = newton_schulz(matrix, 5, (3.4445, -4.7750, 2.0315), 1e-7)
        assert X.shape == matrix.shape and X.dtype == torch.float32
        s = torch.linalg.svdvals(X)
        assert 0.5 <= float(s.min()) and float(s.max()) <= 1.5, (float(s.min()), float(s.max()))


def test_newton_schulz_keeps_the_dtype_and_survives_a_zero_matrix():
    G = torch.randn(5, 3, dtype=torch.float64)
    assert newton_schulz(G, 3, (3.4445, -4.7750, 2.0315), 1e-7).dtype == torch.float64
    zero = newton_schulz(torch.zeros(4, 6), 5, (3.4445, -4.7750, 2.0315), 1e-7)
    assert torch.equal(zero, torch.zeros(4, 6))


def inverse_fourth_root(matrix: np.ndarray, eps: float) -> np.ndarray:
    """(M + eps I)^(-1/4) by scipy's Schur-Pade fractional power, not by eigh."""
    root = scipy.linalg.fractional_matrix_power(matrix + eps * np.eye(len(matrix)), -0.25)
    return np.real(root)


def formula_shampoo(p0, grads, lr, beta2, eps, update_every, momentum, weight_decay):
    """Shampoo with exponential averages, written out in float64 numpy."""
    p = p0.copy()
    L, R = np.zeros((p0.shape[0],) * 2), np.zeros((p0.shape[1],) * 2)
    buf = np.zeros_like(p0)
    for t, G in enumerate(grads, start=1):
        L = beta2 * L + (1 - beta2) * G @ G.T
        R = beta2 * R + (1 - beta2) * G.T @ G
        if (t - 1) % update_every == 0:
            left, right = inverse_fourth_root(L, eps), inverse_fourth_root(R, eps)
        update = left @ G @ right
        buf = momentum * buf + update
        p = p * (1 - lr * weight_decay)
        p = p - lr * (buf if momentum else update)
    return p


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("hyper", [
    dict(beta2=0.9, eps=1e-3, update_every=1, momentum=0.0, weight_decay=0.0),
    dict(beta2=0.99, eps=1e-2, update_every=3, momentum=0.9, weight_decay=0.1)],
    ids=["plain", "every3_momentum_decay"])
def test_shampoo_matches_its_formula_in_float64(shape, hyper):
    p0, grads = seeded(SHAPES[shape], 10, seed=11)
    ours = run(Shampoo, p0, grads, lr=0.05, **hyper)[-1].numpy()
    np.testing.assert_allclose(ours, formula_shampoo(p0, grads, lr=0.05, **hyper),
                               atol=1e-8, rtol=0)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_shampoo_with_beta2_zero_steps_along_u_v_transposed(shape):
    """With beta2 = 0 and a tiny eps, (G G^T)^(-1/4) G (G^T G)^(-1/4) = U V^T."""
    p0, grads = seeded(SHAPES[shape], 1, seed=13)
    after = run(Shampoo, p0, grads, lr=0.5, beta2=0.0, eps=1e-12)[0].numpy()
    U, _, Vt = np.linalg.svd(grads[0], full_matrices=False)
    np.testing.assert_allclose((p0 - after) / 0.5, U @ Vt, atol=1e-8, rtol=0)


@pytest.mark.parametrize("optimizer_class, hyper, named", [
    (Muon, dict(lr=-1.0), "-1.0"), (Muon, dict(momentum=1.0), "1.0"),
    (Muon, dict(ns_steps=0), "0"), (Muon, dict(eps=-1e-7), "-1e-07"),
    (Muon, dict(weight_decay=-0.1), "-0.1"), (Muon, dict(adjust_lr_fn="rms"), "'rms'"),
    (Muon, dict(ns_coefficients=(1.0, 2.0)), "(1.0, 2.0)"),
    (Shampoo, dict(lr=-0.1), "-0.1"), (Shampoo, dict(lr=0.1, beta2=1.0), "1.0"),
    (Shampoo, dict(lr=0.1, eps=0.0), "0.0"), (Shampoo, dict(lr=0.1, update_every=0), "0"),
    (Shampoo, dict(lr=0.1, momentum=-0.5), "-0.5"),
    (Shampoo, dict(lr=0.1, weight_decay=-1.0), "-1.0")])
def test_bad_hyper_parameters_are_refused_naming_the_value(optimizer_class, hyper, named):
    with pytest.raises(ValueError, match=named.replace("(", r"\(").replace(")", r"\)")):
        optimizer_class([torch.nn.Parameter(torch.zeros(2, 2))], **hyper)


@pytest.mark.parametrize("optimizer_class", [Muon, Shampoo])
def test_only_matrices_are_taken(optimizer_class):
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        optimizer_class([torch.nn.Parameter(torch.zeros(3))], lr=0.1)


@pytest.mark.parametrize("optimizer_class", [Muon, Shampoo])
def test_state_dict_round_trip_continues_the_same_trajectory(optimizer_class):
    p0, grads = seeded((4, 3), 6, seed=17)
    hyper = dict(lr=0.05, momentum=0.5, weight_decay=0.1)
    straight = run(optimizer_class, p0, grads, **hyper)[-1]
    param = torch.nn.Parameter(torch.tensor(p0))
    first = optimizer_class([param], **hyper)
    for g in grads[:3]:
        param.grad = torch.tensor(g)
        first.step()
    second = optimizer_class([param], **hyper)
    second.load_state_dict(first.state_dict())
    for g in grads[3:]:
        param.grad = torch.tensor(g)
        second.step()
    assert torch.equal(param.detach(), straight)


# --- --optimizer muon|shampoo in the one loop (training/optimizers.py) ---

def tiny_gpt() -> GPT2Model:
    torch.manual_seed(0)
    return GPT2Model(GPT2Config(vocab_size=50, max_position_embeddings=16, hidden_size=16,
                                num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=32))


def test_the_blocks_matrices_go_to_muon_and_everything_else_to_adamw():
    gpt = tiny_gpt()
    model = torch.nn.ModuleDict({"gpt": gpt, "head": torch.nn.Linear(16, 3)})
    config = TrainConfig(max_iters=4, learning_rate=1e-3, optimizer="muon", muon_lr=0.05)
    adamw, muon = build_optimizers(model, config)
    names = {id(p): name for name, p in model.named_parameters()}
    in_muon = sorted(names[id(p)] for group in muon.param_groups for p in group["params"])
    in_adamw = sorted(names[id(p)] for group in adamw.param_groups for p in group["params"])
    assert type(adamw) is AdamW and type(muon) is Muon
    assert in_muon == sorted(name for name, p in model.named_parameters()
                             if name.startswith("gpt.gpt_layers.") and p.dim() == 2)
    assert len(in_muon) == 2 * 6  # query, key, value, attention_dense, interm, out per layer
    assert set(in_adamw) == set(names.values()) - set(in_muon)
    assert {"gpt.word_embedding.weight", "head.weight", "head.bias",
            "gpt.final_layer_norm.weight"} <= set(in_adamw)
    assert muon.param_groups[0]["lr_scale"] == pytest.approx(50.0)
    (only,) = build_optimizers(model, TrainConfig(max_iters=4))  # adamw: everything
    assert sum(len(g["params"]) for g in only.param_groups) == len(names)


@pytest.mark.parametrize("optimizer, lr_flag", [("muon", "muon_lr"), ("shampoo", "shampoo_lr")])
def test_each_group_follows_the_schedule_from_its_own_peak(optimizer, lr_flag, tmp_path):
    config = TrainConfig(max_iters=3, learning_rate=1e-3, min_lr=1e-4, warmup_iters=1,
                         eval_interval=100, out_dir=str(tmp_path), optimizer=optimizer,
                         progress=False, **{lr_flag: 0.01})
    model = CausalLM(tiny_gpt())
    tokens = np.random.default_rng(0).integers(0, 50, 400).astype(np.uint16)
    batches = TokenBatches(tokens, 8, 2, 1, 0, 1, seed=1)

    def loss(model, batch):
        logits = model(batch["input_ids"]).float()
        return torch.nn.functional.cross_entropy(logits.reshape(-1, 50),
                                                 batch["targets"].reshape(-1))

    trainer = Trainer(model, config, loss, batches, None)
    before = [p.detach().clone() for p in block_matrices(model)]
    for step in range(3):
        trainer.train_step()
        adamw_lr = lr_at(step, 1e-3, 1e-4, 1, 3)
        adamw, matrices = trainer.optimizers
        assert adamw.param_groups[0]["lr"] == pytest.approx(adamw_lr, rel=1e-12)
        assert matrices.param_groups[0]["lr"] == pytest.approx(adamw_lr * 10, rel=1e-12)
        trainer.iter_num += 1
    assert all(not torch.equal(a, p) for a, p in zip(before, block_matrices(model), strict=True))


@pytest.mark.parametrize("argv, message", [
    (["--optimizer", "sgd"], "argument --optimizer: invalid choice: 'sgd'"),
    (["--muon_lr", "0"], "argument --muon_lr: 0 is not a number > 0"),
    (["--shampoo_lr", "nan"], "argument --shampoo_lr: nan is not a number > 0"),
    (["--shampoo_update_every", "0"], "argument --shampoo_update_every: 0 is not an integer"),
    (["--shampoo_eps", "0"], "argument --shampoo_eps: 0 is not a number > 0"),
    (["--optimizer", "muon", "--parallel", "fsdp"], "--optimizer muon preconditions whole "
                                                    "matrices and --parallel fsdp shards"),
])
def test_bad_optimizer_flags_are_refused_with_the_value(argv, message, capsys):
    with pytest.raises(SystemExit):
        pretrain.get_args(argv)
    assert message in capsys.readouterr().err
    if "fsdp" not in argv:
        with pytest.raises(SystemExit):
            classifier.get_args(argv)
        assert message in capsys.readouterr().err


def test_train_config_refuses_an_unknown_optimizer_and_fsdp_with_muon():
    with pytest.raises(ValueError, match="optimizer 'lion'"):
        TrainConfig(max_iters=1, optimizer="lion")
    with pytest.raises(ValueError, match="parallel 'fsdp' shards them"):
        TrainConfig(max_iters=1, optimizer="shampoo", parallel="fsdp")


def test_pretrain_with_shampoo_keeps_its_flags_on_resume(tmp_path, capsys):
    text = tmp_path / "input.txt"
    text.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 100,
                    encoding="utf-8")
    prepare_lm.main(["--input", str(text), "--tokenizer", "bytes", "--out_dir",
                     str(tmp_path / "chars")])
    flags = ["--data_dir", str(tmp_path / "chars"), "--out_dir", str(tmp_path / "run"),
             "--num_samples", "0", "--n_layer", "1", "--n_head", "2", "--n_embd", "16",
             "--block_size", "16", "--batch_size", "2", "--warmup_iters", "1",
             "--eval_interval", "2", "--eval_iters", "1"]
    pretrain.main([*flags, "--max_iters", "2", "--optimizer", "shampoo", "--shampoo_lr",
                   "0.002", "--shampoo_update_every", "3"])
    assert "optimizers: Shampoo on 6 tensors (lr 0.002), AdamW on" in capsys.readouterr().out
    pretrain.main([*flags, "--init_from", "resume", "--max_iters", "4", "--override"])
    state = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=False)
    assert state["iter_num"] == 4
    assert (state["config"]["optimizer"], state["config"]["shampoo_lr"],
            state["config"]["shampoo_update_every"]) == ("shampoo", 0.002, 3)
    roots = [s for s in state["optimizer"]["state"].values() if "left_root" in s]
    assert len(roots) == 6 and all(s["step"] == 4 for s in roots)

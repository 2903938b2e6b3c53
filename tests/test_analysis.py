"""The outlier analysis (`analysis/`) on tiny random models: its statistics against a plain
layer-by-layer recomputation, a planted massive activation, the attention on the first
position against eager probabilities computed by hand, the command line's files and its
messages for bad paths."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis import outliers
from config import GPT2Config
from data import prepare_lm
from models.gpt2 import GPT2Model
from utils import get_extended_attention_mask

VOCAB = 300


def tiny(seed: int = 0, **switches) -> GPT2Model:
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=VOCAB, max_position_embeddings=32, hidden_size=16,
                        num_hidden_layers=3, num_attention_heads=2, **switches)
    return GPT2Model(config).eval()


def windows(seed: int = 0, n: int = 5, t: int = 12) -> torch.Tensor:
    return torch.randint(VOCAB, (n, t), generator=torch.Generator().manual_seed(seed))


def manual_layers(model: GPT2Model, ids: torch.Tensor) -> tuple[list[torch.Tensor], list]:
    """Each block's input and output, one layer at a time (as output_hidden_states would)."""
    with torch.no_grad():
        hidden = model.embed(ids)
        mask = get_extended_attention_mask(torch.ones_like(ids), hidden.dtype)
        inputs, outs = [], []
        for layer in model.gpt_layers:
            inputs.append(hidden)
            hidden = layer(hidden, mask)
            outs.append(hidden)
    return inputs, outs


def test_statistics_equal_a_plain_recomputation():
    model, ids = tiny(), windows()
    layers = outliers.analyse(model, ids, str, batch_size=2)
    _, outs = manual_layers(model, ids)
    for layer, out in enumerate(outs):
        per_window = np.abs(out.double().numpy()).reshape(len(ids), -1)  # (N, T*D)
        ranked = -np.sort(-per_window, axis=1)
        row = layers[layer]
        # float64 statistics of the same fp32 activations: 1e-6 relative (layer-by-layer and
        # hooked forwards may differ in the last fp32 bit)
        for k in range(3):
            assert row[f"top{k + 1}"] == pytest.approx(ranked[:, k].mean(), rel=1e-6)
        assert row["median"] == pytest.approx(np.median(per_window, axis=1).mean(), rel=1e-6)
        window = int(ranked[:, 0].argmax())
        position, channel = divmod(int(per_window[window].argmax()), out.shape[-1])
        assert (row["largest_window"], row["largest_position"], row["largest_channel"]) == (
            window, position, channel)
        assert row["largest_token_id"] == int(ids[window, position])
        assert row["bias_key_attention"] is None


def test_planted_massive_activation_is_found():
    model, ids = tiny(), windows(n=4) % 200  # no token 250 anywhere ...
    ids[:, 3] = 250  # ... but at position 3
    with torch.no_grad():
        model.gpt_layers[1].out_dense.bias[5] = 1000.0  # every position, from block 1 on
        model.word_embedding.weight[250, 5] = 100.0  # position 3 stands out further
    layers = outliers.analyse(model, ids, lambda i: f"<{i}>")
    assert layers[0]["top1"] < 200 < 1000 < layers[1]["top1"]
    row = layers[1]
    assert (row["largest_position"], row["largest_channel"], row["largest_token"]) == (
        3, 5, "<250>")
    assert (row["top1_position_mode"], row["top1_channel_mode"]) == (3, 5)


def by_hand(variant: str, scores: torch.Tensor, bias_scores: torch.Tensor | None
            ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Weights on the first token and on k' [N, H, T] from float64 scores [N, H, T, T]
    (future keys at -inf) and q.k'/sqrt(d) [N, H, T, 1], by each variant's formula."""
    if variant == "softmax":
        return scores.softmax(dim=-1)[..., 0], None
    if variant == "attn_bias":  # one softmax over {k', k_1 .. k_i}
        joint = torch.cat([bias_scores, scores], dim=-1).softmax(dim=-1)  # (N, H, T, 1 + T)
        return joint[..., 1], joint[..., 0]
    normaliser = scores.logsumexp(dim=-1, keepdim=True)  # cabias: p_i beside softmax_j
    return scores.softmax(dim=-1)[..., 0], torch.sigmoid(bias_scores - normaliser)[..., 0]


@pytest.mark.parametrize("variant", ["softmax", "attn_bias", "cabias"])
def test_first_position_attention_equals_eager_probabilities_by_hand(variant):
    model, ids = tiny(seed=1, attention_variant=variant), windows(seed=1)
    layers = outliers.analyse(model, ids, str)
    inputs, _ = manual_layers(model, ids)
    T = ids.shape[1]
    for index, (layer, x) in enumerate(zip(model.gpt_layers, inputs, strict=True)):
        attention = layer.self_attention
        with torch.no_grad():
            normed = layer.attention_layer_norm(x).double()  # (N, T, D)
            q, k = (torch.nn.functional.linear(normed, proj.weight.double(), proj.bias.double())
                    .view(*ids.shape, 2, -1).transpose(1, 2)  # (N, H, T, d)
                    for proj in (attention.query, attention.key))
            bias_scores = None
            if variant != "softmax":
                bias_scores = q @ attention.k_bias.double()[None, :, :, None] / math.sqrt(
                    q.shape[-1])  # (N, H, T, 1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (N, H, T, T)
        scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), -math.inf)
        first, bias = by_hand(variant, scores, bias_scores)
        # fp32 model against a float64 recomputation: 1e-6 absolute on weights in [0, 1]
        row = layers[index]
        assert row["first_position_attention"] == pytest.approx(float(first.mean()), abs=1e-6)
        if bias is None:
            assert row["bias_key_attention"] is None
        else:
            assert row["bias_key_attention"] == pytest.approx(float(bias.mean()), abs=1e-6)


@pytest.mark.parametrize("variant", ["attn_bias", "cabias", "sigmoid", "vbias", "ca_softmax"])
def test_every_variant_reports_weights(variant):
    layers = outliers.analyse(tiny(attention_variant=variant), windows(n=2), str)
    for row in layers:
        assert 0.0 < row["first_position_attention"] <= 1.0
        has_key = variant in ("attn_bias", "cabias")
        assert (row["bias_key_attention"] is not None) == has_key
        if variant == "attn_bias":  # k' and the tokens share one softmax
            assert row["first_position_attention"] + row["bias_key_attention"] <= 1.0 + 1e-6


def test_capture_refuses_the_fused_path():
    model = tiny(attention_impl="sdpa")
    with pytest.raises(ValueError, match="attention_impl='eager'"):
        outliers.capture(model, windows(n=1))


def save_checkpoint(model: GPT2Model, path: Path) -> Path:
    path.parent.mkdir(parents=True)
    torch.save({"model": model.state_dict(), "model_args": asdict(model.config)}, path)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    text = folder / "input.txt"
    text.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 40,
                    encoding="utf-8")
    prepare_lm.main(["--input", str(text), "--tokenizer", "bytes", "--out_dir",
                     str(folder / "chars")])
    return folder / "chars"


def test_cli_writes_figures_json_and_csv_for_two_checkpoints(corpus, tmp_path):
    first = save_checkpoint(tiny(seed=0), tmp_path / "softmax" / "ckpt.pt")
    second = save_checkpoint(tiny(seed=1, attention_variant="attn_bias"),
                             tmp_path / "attn_bias" / "ckpt.pt")
    out = tmp_path / "analysis"
    outliers.main(["--model", str(first), "--model", str(second.parent), "--data_dir",
                   str(corpus), "--windows", "3", "--block_size", "16", "--seed", "0",
                   "--out_dir", str(out)])
    for name in ("layerwise_softmax.png", "layerwise_attn_bias.png", "compare_top1.png",
                 "tokens_channels_softmax.png", "tokens_channels_attn_bias.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((out / "outliers.json").read_text())
    assert list(saved["models"]) == ["softmax", "attn_bias"]
    assert saved["settings"]["windows"] == 3
    with open(out / "outliers.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["model"], row["layer"]) for row in rows] == [
        (label, str(layer)) for label in ("softmax", "attn_bias") for layer in range(3)]
    # the CSV and JSON carry the same numbers (CSV: Python's shortest repr, exact)
    assert float(rows[4]["top1"]) == saved["models"]["attn_bias"]["layers"][1]["top1"]


@pytest.mark.parametrize("flags, message", [
    (["--model", "{tmp}/nowhere/ckpt.pt", "--data_dir", "{corpus}"], "nowhere/ckpt.pt not found"),
    (["--model", "{tmp}", "--data_dir", "{corpus}"], "neither ckpt.pt nor"),
    (["--model", "{ckpt}", "--data_dir", "{tmp}/no_corpus"], "no_corpus not found"),
    (["--model", "{ckpt}", "--text", "{tmp}/missing.txt", "--tokenizer", "{corpus}/tokenizer"],
     "missing.txt"),
    (["--model", "{ckpt}", "--data_dir", "{corpus}", "--block_size", "64"],
     "exceeds the context 32"),
])
def test_bad_paths_and_sizes_give_clear_messages(corpus, tmp_path, flags, message):
    ckpt = save_checkpoint(tiny(), tmp_path / "run" / "ckpt.pt")
    argv = [flag.format(tmp=tmp_path, corpus=corpus, ckpt=ckpt) for flag in flags]
    with pytest.raises(SystemExit, match=message):
        outliers.main(["--windows", "2", "--block_size", "16", "--out_dir", str(tmp_path / "out"),
                       *argv])  # argv last: its --block_size wins

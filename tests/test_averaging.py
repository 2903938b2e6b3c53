"""Checkpoint averaging: the element-wise mean, integers untouched, ties kept; the CLI.

Tolerance: averaged float32 weights equal the float64 mean rounded to float32 within 1e-7
relative (one rounding); integers and small exact cases are compared exactly."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import pretrain
from average_checkpoints import main as average_main
from config import GPT2Config
from data.prepare_lm import main as prepare_lm
from models.gpt2 import GPT2Model
from training.averaging import average_checkpoints, average_state_dicts, last_checkpoints
from training.checkpoint import load_checkpoint, model_from_checkpoint
from training.lm_data import open_split
from training.perplexity import sequence_nll

SMALL = dict(num_hidden_layers=1, num_attention_heads=2, hidden_size=16, intermediate_size=32,
             vocab_size=256, max_position_embeddings=16)


def tied_state(seed: int, step: int) -> dict[str, torch.Tensor]:
    """A state dict with a float32 and a bfloat16 weight, an output head tied to the
    embedding (one tensor under two names), and an integer buffer."""
    generator = torch.Generator().manual_seed(seed)
    embedding = torch.randn(5, 3, generator=generator)
    return {"embedding.weight": embedding, "head.weight": embedding,
            "norm.weight": torch.randn(3, generator=generator).to(torch.bfloat16),
            "steps": torch.tensor([step, 2 * step])}


def save_model_checkpoint(path, seed: int, iter_num: int, data_dir=None) -> GPT2Model:
    torch.manual_seed(seed)
    model = GPT2Model(GPT2Config(**SMALL))
    torch.save({"model": model.state_dict(), "model_args": dataclasses.asdict(model.config),
                "iter_num": iter_num, "optimizer": {"state": {}},
                "config": {"data_dir": str(data_dir)}}, path)
    return model


def test_small_exact_mean():
    states = [{"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([3.0, 4.0])},
              {"w": torch.tensor([5.0, 9.0])}]
    assert torch.equal(average_state_dicts(states)["w"], torch.tensor([3.0, 5.0]))


def test_mean_ints_and_ties(tmp_path):
    states = [tied_state(seed, step) for seed, step in ((0, 10), (1, 20), (2, 30))]
    out = average_state_dicts(states)
    mean = torch.stack([s["embedding.weight"].double() for s in states]).mean(0)
    torch.testing.assert_close(out["embedding.weight"], mean.float(), rtol=1e-7, atol=0)
    assert out["norm.weight"].dtype == torch.bfloat16
    norm_mean = torch.stack([s["norm.weight"].double() for s in states]).mean(0)
    assert torch.equal(out["norm.weight"], norm_mean.to(torch.bfloat16))
    assert torch.equal(out["steps"], torch.tensor([30, 60]))  # the last's, not averaged
    assert out["head.weight"] is out["embedding.weight"]

    paths = []
    for k, state in enumerate(states):
        paths.append(tmp_path / f"ckpt_{k}.pt")
        torch.save({"model": state, "model_args": {}, "iter_num": k, "optimizer": {}}, paths[-1])
    averaged = average_checkpoints(paths)
    assert "optimizer" not in averaged and averaged["iter_num"] == 2
    assert averaged["averaged_from"] == [str(p) for p in paths]
    torch.save(averaged, tmp_path / "avg.pt")
    loaded = torch.load(tmp_path / "avg.pt", weights_only=True)["model"]
    assert loaded["head.weight"].data_ptr() == loaded["embedding.weight"].data_ptr()
    torch.testing.assert_close(loaded["embedding.weight"], mean.float(), rtol=1e-7, atol=0)


def test_last_checkpoints_by_iter(tmp_path):
    for name, iter_num in (("ckpt_100.pt", 100), ("ckpt_200.pt", 200), ("ckpt_300.pt", 300),
                           ("ckpt.pt", 300), ("best.pt", 200)):
        torch.save({"model": {}, "model_args": {}, "iter_num": iter_num}, tmp_path / name)
    torch.save({"model": {}, "model_args": {}, "iter_num": 300, "averaged_from": []},
               tmp_path / "avg.pt")  # an earlier average: not a step of the run
    assert last_checkpoints(tmp_path, 2) == [tmp_path / "ckpt_200.pt", tmp_path / "ckpt_300.pt"]
    assert [p.name for p in last_checkpoints(tmp_path, 3)] == ["ckpt_100.pt", "ckpt_200.pt",
                                                               "ckpt_300.pt"]
    (tmp_path / "ckpt_300.pt").unlink()  # without a kept file, the first by name
    assert last_checkpoints(tmp_path, 2) == [tmp_path / "ckpt_200.pt", tmp_path / "ckpt.pt"]
    (tmp_path / "ckpt_200.pt").unlink()
    assert last_checkpoints(tmp_path, 2) == [tmp_path / "best.pt", tmp_path / "ckpt.pt"]
    with pytest.raises(ValueError, match=r"3 distinct steps \(\[100, 200, 300\]\), fewer than "
                                         "the 4 asked for"):
        last_checkpoints(tmp_path, 4)
    torch.save({"model": {}, "model_args": {}}, tmp_path / "odd.pt")
    with pytest.raises(ValueError, match="odd.pt has no integer iter_num"):
        last_checkpoints(tmp_path, 2)


def test_mismatches_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"checkpoint 0: w is \(3,\)"):
        average_state_dicts([{"w": torch.zeros(3)}, {"w": torch.zeros(4)}])
    with pytest.raises(ValueError, match=r"missing \['v'\]"):
        average_state_dicts([{"w": torch.zeros(3)}, {"w": torch.zeros(3), "v": torch.zeros(1)}])
    save_model_checkpoint(tmp_path / "a.pt", 0, 1)
    torch.save({"model": {}, "model_args": {"hidden_size": 8}, "iter_num": 2}, tmp_path / "b.pt")
    with pytest.raises(ValueError, match="only checkpoints of one model average"):
        average_checkpoints([tmp_path / "a.pt", tmp_path / "b.pt"])


def test_cli_reports_both_losses(tmp_path, capsys):
    text = tmp_path / "corpus.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 20, encoding="utf-8")
    corpus = tmp_path / "corpus"
    prepare_lm(["--input", str(text), "--tokenizer", "bytes", "--out_dir", str(corpus)])
    runs = tmp_path / "run"
    runs.mkdir()
    models = [save_model_checkpoint(runs / f"ckpt_{i}.pt", seed=i, iter_num=i, data_dir=corpus)
              for i in range(4)]
    losses = average_main(["--dir", str(runs), "--last", "3", "--out", str(tmp_path / "avg.pt"),
                           "--data_dir", str(corpus)])
    out = capsys.readouterr().out
    assert f"last checkpoint {losses['last']:.4f}" in out and "average of 3" in out
    nll, count = sequence_nll(models[-1], open_split(corpus, "val"), 16, 16)
    assert losses["last"] == pytest.approx(nll / count, rel=1e-6)
    averaged = model_from_checkpoint(tmp_path / "avg.pt")
    mean = torch.stack([m.word_embedding.weight.detach().double() for m in models[1:]]).mean(0)
    torch.testing.assert_close(averaged.word_embedding.weight.detach(), mean.float(),
                               rtol=1e-7, atol=0)


def test_pretrain_keeps_its_last_checkpoints_and_their_average_is_their_mean(tmp_path,
                                                                              capsys):
    """pretrain.py --keep_checkpoints 3, evaluating every 2 of 8 steps, leaves ckpt_4, ckpt_6
    and ckpt_8 (ckpt_2 deleted); average_checkpoints.py --dir --last 3 averages those three
    (the float64 mean rounded once to float32: rtol 1.2e-7, atol 0), keeps the output head
    tied, and prints both validation losses, finding the corpus in the checkpoint's flags."""
    text = tmp_path / "corpus.txt"
    text.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 40,
                    encoding="utf-8")
    corpus, out = tmp_path / "chars", tmp_path / "run"
    prepare_lm(["--input", str(text), "--tokenizer", "bytes", "--out_dir", str(corpus)])
    pretrain.main(["--data_dir", str(corpus), "--out_dir", str(out), "--max_iters", "8",
                   "--eval_interval", "2", "--keep_checkpoints", "3", "--n_layer", "1",
                   "--n_head", "2", "--n_embd", "16", "--block_size", "16", "--batch_size",
                   "2", "--warmup_iters", "1", "--eval_iters", "1", "--num_samples", "0"])
    kept = [out / f"ckpt_{i}.pt" for i in (4, 6, 8)]
    assert sorted(out.glob("ckpt_*.pt")) == sorted(kept)
    assert [load_checkpoint(path)["iter_num"] for path in kept] == [4, 6, 8]
    capsys.readouterr()

    losses = average_main(["--dir", str(out), "--last", "3", "--out", str(out / "avg.pt")])
    states = [load_checkpoint(path)["model"] for path in kept]
    averaged = load_checkpoint(out / "avg.pt")
    assert set(averaged["model"]) == set(states[-1])
    for name, tensor in averaged["model"].items():
        mean = torch.stack([state[name].double() for state in states]).mean(0)
        torch.testing.assert_close(tensor, mean.float(), rtol=1.2e-7, atol=0)
    model = model_from_checkpoint(out / "avg.pt")
    assert model.output_weight is model.word_embedding.weight
    printed = capsys.readouterr().out
    assert (f"validation loss: last checkpoint {losses['last']:.4f} ({kept[-1]}), average of 3 "
            f"{losses['average']:.4f} ({out / 'avg.pt'})") in printed


@pytest.mark.parametrize("argv, message", [
    (["--dir", "RUNS", "--out", "x.pt"], "--dir needs --last N"),
    (["--dir", "RUNS", "--last", "2", "--out", "x.pt"], "fewer than the 2 asked for"),
    (["--checkpoints", "missing.pt", "--out", "x.pt"], "checkpoint not found: missing.pt"),
    (["--dir", "nowhere", "--last", "1", "--out", "x.pt"], "checkpoint folder not found"),
    (["--dir", "RUNS", "--last", "1", "--out", "x.pt", "--eval_tokens", "0"],
     "argument --eval_tokens: 0 is not an integer >= 1"),
])
def test_cli_errors(tmp_path, capsys, argv, message):
    runs = tmp_path / "runs"
    runs.mkdir()
    save_model_checkpoint(runs / "ckpt.pt", 0, 5)
    with pytest.raises(SystemExit) as exit_info:
        average_main([str(runs) if a == "RUNS" else a for a in argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err

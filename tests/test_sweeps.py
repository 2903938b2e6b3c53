"""Sweeps (`sweep.py`, `training.sweeps`, `analysis.sweep_summary`): grid files checked
against pretrain.py's parser, their expansion into named runs, a killed sweep resumed and
finished runs skipped, and the summary's values equal to the metrics log and the checkpoint.
The Slurm job array is in tests/test_slurm.py."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import pretrain
import sweep
from analysis.outliers import analyse, load_model, sample_windows
from analysis.sweep_summary import GROUPED, aggregate, final_metrics, group_rows, loss_spikes
from data import prepare_lm
from tests.conftest import SIZES
from training.checkpoint import model_from_checkpoint
from training.lm_data import load_lm_tokenizer, open_split
from training.metrics import read_metrics
from training.sweeps import (
    GridError,
    expand,
    parse_setting,
    read_grid,
    run_state,
    to_argv,
    write_runs,
)

REPO = Path(__file__).resolve().parents[1]
TINY = {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 32, "batch_size": 4,
        "max_iters": 4, "warmup_iters": 1, "eval_interval": 2, "eval_iters": 2,
        "log_interval": 1, "num_samples": 0}


def toml_table(flags: dict) -> str:
    return "".join(f"{key} = {str(value).lower() if isinstance(value, bool) else repr(value)}\n"
                   for key, value in flags.items()).replace("'", '"')


def write_grid(folder: Path, text: str, base: dict | None = None) -> Path:
    path = folder / "grid.toml"
    path.write_text(text.replace("[base]\n", "[base]\n" + toml_table(base or {})),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    text = folder / "input.txt"
    text.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 300,
                    encoding="utf-8")
    prepare_lm.main(["--input", str(text), "--tokenizer", "bytes", "--out_dir",
                     str(folder / "chars")])
    return folder / "chars"


def test_the_checked_in_grids_expand_into_named_runs():
    runs = expand(read_grid(REPO / "sweeps" / "attention_variants.toml"))
    assert list(runs) == [f"attention_variant={v},seed=1337" for v in
                          ("softmax", "vbias", "cabias", "attn_bias", "ca_softmax", "sigmoid")]
    assert runs["attention_variant=cabias,seed=1337"] == {
        "data_dir": "data/shakespeare_char", "attention_variant": "cabias", "seed": 1337}
    assert len(expand(read_grid(REPO / "sweeps" / "centering.toml"))) == 8
    sst = read_grid(REPO / "sweeps" / "sst_lr.toml")
    assert sst.script == "classifier.py" and len(expand(sst)) == 6


def test_expansion_is_the_product_in_file_order_seeds_fastest(tmp_path):
    path = write_grid(tmp_path, 'seeds = [3, 1]\n[base]\n[grid]\nz_loss = [0.0, 1e-4]\n'
                                'qk_norm = [false, true]\n', {"n_layer": 2})
    runs = expand(read_grid(path))
    assert list(runs) == [f"z_loss={z},qk_norm={q},seed={s}" for z in ("0.0", "0.0001")
                          for q in (False, True) for s in (3, 1)]
    assert runs["z_loss=0.0001,qk_norm=True,seed=1"] == {
        "n_layer": 2, "z_loss": 1e-4, "qk_norm": True, "seed": 1}


@pytest.mark.parametrize("text, message", [
    ("seeds = [0]\n[grid]\nn_layers = [1, 2]\n", "[grid] n_layers: unrecognized arguments"),
    ("seeds = [0]\n[base]\nmax_iter = 3\n", "[base] max_iter: unrecognized arguments"),
    ('seeds = [0]\n[grid]\nattention_variant = ["softmx"]\n',
     "[grid] attention_variant: argument --attention_variant: invalid choice: 'softmx'"),
    ("seeds = [0]\n[base]\nmax_iters = 0\n",
     "[base] max_iters: argument --max_iters: 0 is not an integer >= 1"),
    ("seeds = [0]\n[base]\nn_layer = [2]\n", "[base] n_layer = [2]: want a string, number"),
    ("seeds = [0]\n[grid]\nn_layer = 2\n", "[grid] n_layer = 2: want a non-empty list"),
    ("seeds = [0]\n[grid]\nn_layer = [2, 2]\n", "[grid] n_layer = [2, 2]: a value is repeated"),
    ("seeds = [0]\n[grid]\nseed = [1, 2]\n", "seed is set by the sweep"),
    ('seeds = [0]\n[base]\nout_dir = "x"\n', "out_dir is set by the sweep"),
    ("[grid]\nn_layer = [1]\n", "seeds = []: want a non-empty list of integers"),
    ("seeds = [0, 0]\n", "a seed is repeated"),
    ("seed = [0]\n", "unknown top-level keys ['seed']"),
    ("seeds = [0]\n[base]\nn_layer = 1\n[grid]\nn_layer = [2]\n", "['n_layer'] in both"),
    ("seeds = [0]\n[base]\nn_embd = 30\n[grid]\nn_head = [2, 4]\n",
     "run n_head=4,seed=0: --n_embd 30 is not divisible by --n_head 4"),
    ("seeds = [0\n", "not TOML"),
    ('seeds = [0]\n[base]\ninit_from = "resume"\n', "the sweep resumes a started run itself"),
])
def test_a_bad_grid_is_refused_naming_the_file_and_key(tmp_path, text, message):
    path = write_grid(tmp_path, text)
    with pytest.raises(GridError) as error:
        read_grid(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)


def test_a_sweep_folder_keeps_its_runs(tmp_path):
    runs = {"a,seed=0": {"seed": 0}, "b,seed=0": {"seed": 0}}
    write_runs(tmp_path, runs)
    write_runs(tmp_path, runs)  # the same sweep again: resumed
    with pytest.raises(GridError, match="holds a different sweep"):
        write_runs(tmp_path, dict(reversed(runs.items())))  # another order: other indices


@pytest.mark.parametrize("losses, spikes", [
    ([3.0, 2.0, 2.1, 2.3, 1.9, 2.2], 2),  # the docstring's example
    ([5.0, 4.0, 3.0, 2.0], 0),  # falling
    ([2.0, 2.2, 2.2000001], 1),  # exactly 10% above is not a spike (2.2 = 1.1 x 2.0)
    ([1.0], 0),
])
def test_loss_spikes_count_losses_above_the_running_minimum(losses, spikes):
    assert loss_spikes(losses, 0.1) == spikes


def test_final_metrics_read_the_last_rows():
    rows = [{"train_loss": None, "val_loss": 5.0, "perplexity": math.exp(5.0),
             "bits_per_byte": None},
            {"train_loss": 2.0, "train_cross_entropy": 1.5, "val_loss": None},
            {"train_loss": 3.0, "train_cross_entropy": 1.8, "val_loss": 1.7,
             "perplexity": math.exp(1.7), "bits_per_byte": 2.5},
            {"train_loss": 2.5, "train_cross_entropy": 1.6, "val_loss": None,
             "time_s": 4.0, "tokens": 1000}]
    assert final_metrics(rows) == {"train_loss": 2.5, "train_cross_entropy": 1.6,
                                   "val_loss": 1.7, "perplexity": math.exp(1.7),
                                   "bits_per_byte": 2.5, "loss_spikes": 1, "time_s": 4.0,
                                   "tokens": 1000, "tokens_per_s": 250.0}


@pytest.mark.parametrize("text, expected", [
    ("max_iters=50", ("max_iters", 50)), ("lr=1e-3", ("lr", 1e-3)),
    ("compile=false", ("compile", False)), ("device=cpu", ("device", "cpu")),
    ('attention_variant="attn_bias"', ("attention_variant", "attn_bias")),
])
def test_a_setting_is_read_as_a_toml_scalar(text, expected):
    assert parse_setting(text) == expected


@pytest.mark.parametrize("text", ["max_iters", "=5", ""])
def test_a_setting_without_key_and_value_is_refused(text):
    with pytest.raises(GridError, match="want key=value"):
        parse_setting(text)


def test_set_replaces_a_base_value_and_a_grid_list(tmp_path):
    grid = write_grid(tmp_path, 'seeds = [0, 1]\n[base]\n[grid]\n'
                                'attention_variant = ["softmax", "attn_bias"]\n', TINY)
    args = sweep.parse_args(["run", str(grid), "--out_dir", str(tmp_path / "s"), "--set",
                             "max_iters=7", "--set", "attention_variant=attn_bias"])
    assert args.set == [("max_iters", 7), ("attention_variant", "attn_bias")]
    runs = expand(read_grid(grid, dict(args.set)))
    assert list(runs) == ["seed=0", "seed=1"]  # one value left: no longer in the names
    assert all(flags["max_iters"] == 7 and flags["attention_variant"] == "attn_bias"
               for flags in runs.values())
    with pytest.raises(GridError, match="max_iters"):
        read_grid(grid, {"max_iters": "many"})  # still checked against pretrain.py
    with pytest.raises(SystemExit):
        sweep.parse_args(["run", str(grid), "--out_dir", "x", "--set", "max_iters"])


def test_groups_give_the_mean_and_sample_spread_over_seeds():
    rows = [{"run": f"r{i}", "lr": lr, **dict.fromkeys(GROUPED, value)}
            for i, (lr, value) in enumerate([(1, 1.0), (1, 3.0), (2, 5.0)])]
    rows[2]["bits_per_byte"] = None
    grouped = group_rows(rows, {"1": ["r0", "r1"], "2": ["r2"]}, ["lr"])
    assert grouped[0]["lr"] == 1 and grouped[0]["runs"] == 2
    assert grouped[0]["val_loss_mean"] == 2.0
    assert grouped[0]["val_loss_std"] == pytest.approx(math.sqrt(2), rel=1e-12)
    assert grouped[1]["val_loss_mean"] == 5.0 and grouped[1]["val_loss_std"] is None
    assert grouped[1]["bits_per_byte_mean"] is None


def test_sweep_resumes_skips_finished_runs_and_aggregates(corpus, tmp_path, capsys):
    """Run 0 was killed after its step-2 checkpoint: the sweep resumes it, trains run 1,
    and a second call skips both.  The summary equals the metrics log (exactly) and the
    checkpoint: the largest activation as `analysis.outliers.analyse` gives it (exactly,
    the same windows), the largest logit as the model's own fused-attention forward gives
    it (rel 1e-5)."""
    grid = write_grid(tmp_path, 'seeds = [0]\n[base]\n[grid]\n'
                                'attention_variant = ["softmax", "attn_bias"]\n', TINY)
    out = tmp_path / "sweep"
    names = ["attention_variant=softmax,seed=0", "attention_variant=attn_bias,seed=0"]
    pretrain.main(["--data_dir", str(corpus), "--out_dir", str(out / names[0]),
                   *to_argv({**TINY, "max_iters": 2, "lr_decay_iters": 4, "seed": 0})])
    killed = torch.load(out / names[0] / "ckpt.pt", weights_only=False)
    killed["config"]["max_iters"] = 4  # the run's own flags, as a run killed at step 2 saved them
    torch.save(killed, out / names[0] / "ckpt.pt")
    assert run_state(out / names[0], {**TINY, "seed": 0}) == "started"
    assert sweep.main(["run", str(grid), "--out_dir", str(out), "--data_dir",
                       str(corpus)]) == 0
    printed = capsys.readouterr().out
    assert f"1/2 {names[0]}: resumed" in printed and f"2/2 {names[1]}: new" in printed
    for name in names:
        assert [row["iter"] for row in read_metrics(out / name / "metrics.jsonl")] == \
            list(range(5))
    assert sweep.main(["run", str(grid), "--out_dir", str(out), "--data_dir",
                       str(corpus)]) == 0
    printed = capsys.readouterr().out
    assert all(f"{name}: finished, skipped" in printed for name in names)

    assert sweep.main(["aggregate", str(out), "--windows", "3", "--seed", "5"]) == 0
    with open(out / "summary.csv", newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0])[:3] == ["run", "attention_variant", "seed"]
    tokens = np.asarray(open_split(corpus, "val"))
    windows = sample_windows(tokens, 3, 32, 5)  # (3, 32)
    tokenizer = load_lm_tokenizer(corpus)
    for name, row in zip(names, table, strict=True):
        rows = read_metrics(out / name / "metrics.jsonl")
        assert row["run"] == name and row["iter"] == "4" and row["seed"] == "0"
        assert float(row["train_loss"]) == rows[-1]["train_loss"]
        assert float(row["train_cross_entropy"]) == rows[-1]["train_loss"]  # no parts
        assert float(row["val_loss"]) == rows[-1]["val_loss"]
        assert float(row["perplexity"]) == rows[-1]["perplexity"]
        assert float(row["bits_per_byte"]) == rows[-1]["bits_per_byte"]
        assert int(row["loss_spikes"]) == loss_spikes(
            [r["train_loss"] for r in rows if r["train_loss"] is not None])
        layers = analyse(load_model(str(out / name / "ckpt.pt")), windows,
                         lambda i: tokenizer.decode([i]))
        assert float(row["largest_activation"]) == max(r["top1"] for r in layers)
        model = model_from_checkpoint(out / name / "ckpt.pt", attention_impl="sdpa").eval()
        with torch.no_grad():
            logits = model.hidden_state_to_token(
                model(windows, torch.ones_like(windows))["last_hidden_state"])  # (3, 32, V)
        expected = logits.double().amax(dim=(1, 2)).mean().item()
        assert float(row["largest_logit"]) == pytest.approx(expected, rel=1e-5)
        assert int(row["parameters"]) == sum(p.numel() for p in model.parameters())
        assert float(row["time_s"]) == rows[-1]["time_s"] > 0
        assert int(row["tokens"]) == rows[-1]["tokens"] == 4 * 4 * 32  # steps x batch x T
        assert float(row["tokens_per_s"]) == pytest.approx(
            rows[-1]["tokens"] / rows[-1]["time_s"], rel=1e-12)
    with open(out / "summary_by_group.csv", newline="", encoding="utf-8") as handle:
        groups = list(csv.DictReader(handle))
    assert [(g["attention_variant"], g["runs"]) for g in groups] == \
        [("softmax", "1"), ("attn_bias", "1")]
    assert [float(g["val_loss_mean"]) for g in groups] == [float(r["val_loss"]) for r in table]
    assert all(g["val_loss_std"] == "" for g in groups)  # one seed: no spread
    for name in ("val_loss.png", "largest_activation.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert len((out / "outliers.csv").read_text().splitlines()) == 1 + 2  # 1 layer per run

    plain = aggregate([out / name for name in names], tmp_path / "plain", windows=3, seed=5)
    assert [row["run"] for row in plain] == names  # plain out folders, named by folder
    assert [row["largest_logit"] for row in plain] == \
        [float(row["largest_logit"]) for row in table]


def test_a_failed_run_fails_the_sweep_naming_it_and_the_others_still_run(
        corpus, tmp_path, capsys, monkeypatch):
    fake = tmp_path / "pretrain.py"  # stands for pretrain.py: fails for seed 0 only
    fake.write_text("import sys\nsys.exit(3 if sys.argv[sys.argv.index('--seed') + 1] == '0' "
                    "else 0)\n", encoding="utf-8")
    monkeypatch.setattr(sweep, "HERE", tmp_path)
    grid = write_grid(tmp_path, "seeds = [0, 1]\n[base]\n", TINY)
    assert sweep.main(["run", str(grid), "--out_dir", str(tmp_path / "s"), "--data_dir",
                       str(corpus)]) == 1
    printed = capsys.readouterr().out
    assert "seed=0: pretrain.py exited with 3" in printed and "2/2 seed=1: new" in printed
    assert "1 run(s) failed: seed=0\n" in printed


def test_array_spec_compresses_indices():
    assert sweep.array_spec([0, 1, 2, 3], None) == "0-3"
    assert sweep.array_spec([0, 1, 2, 5, 7, 8], 2) == "0-2,5,7-8%2"


def test_slurm_submits_one_array_and_waits_through_sbatch(tmp_path, monkeypatch):
    """`sweep.py slurm --wait` hands sbatch one array over the runs, the output pattern, the
    --sbatch_args and --wait (a recording sbatch on PATH; the real Slurm is in test_slurm)."""
    bin_dir, record = tmp_path / "bin", tmp_path / "argv.json"
    bin_dir.mkdir()
    fake = bin_dir / "sbatch"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {record}\necho 7\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    grid = write_grid(tmp_path, "seeds = [0, 1]\n[base]\n", TINY)
    out = tmp_path / "s"
    assert sweep.main(["slurm", str(grid), "--out_dir", str(out), "--data_dir",
                       str(tmp_path), "--wait", "--sbatch_args", "--mem=1G --time=5"]) == 0
    argv = record.read_text().splitlines()
    assert argv == ["--parsable", "--array=0-1", f"--output={out.resolve()}/slurm-%A_%a.out",
                    "--mem=1G", "--time=5", "--wait", str(sweep.SBATCH_SCRIPT),
                    str(out.resolve())]


# Stands for a task script: records its argv, writes a metrics log whose dev accuracy is
# its --lr, and fails for seed 1.
FAKE_TASK = """import json, sys
from pathlib import Path
argv = sys.argv[1:]
out = Path(argv[argv.index("--checkpoint_dir") + 1])
out.mkdir(parents=True, exist_ok=True)
(out / "argv.json").write_text(json.dumps(argv))
lr = float(argv[argv.index("--lr") + 1])
rows = [{"dev_acc": lr / 2, "dev_f1": 0.1}, {"dev_acc": lr, "dev_f1": 0.2}]
(out / "sst-metrics.jsonl").write_text("".join(json.dumps(r) + "\\n" for r in rows))
sys.exit(3 if argv[argv.index("--seed") + 1] == "1" else 0)
"""


def test_a_task_sweep_runs_the_script_skips_finished_runs_and_tables_dev_accuracy(
        tmp_path, capsys, monkeypatch):
    import classifier

    (tmp_path / "classifier.py").write_text(FAKE_TASK, encoding="utf-8")
    monkeypatch.setattr(sweep, "HERE", tmp_path)
    grid = write_grid(tmp_path, 'script = "classifier.py"\nseeds = [0, 1]\n[base]\n'
                      '[grid]\nlr = [0.25, 0.5]\n',
                      {"task": "sst", "fine-tune-mode": "full-model", "use_gpu": False,
                       "random_init": True})
    out = tmp_path / "s"
    assert sweep.main(["run", str(grid), "--out_dir", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "2 run(s) failed: lr=0.25,seed=1, lr=0.5,seed=1" in printed
    argv = json.loads((out / "lr=0.5,seed=0" / "argv.json").read_text())
    assert argv == ["--task", "sst", "--fine-tune-mode", "full-model", "--random_init",
                    "--lr", "0.5", "--seed", "0", "--out_dir", str(out / "lr=0.5,seed=0"),
                    "--checkpoint_dir", str(out / "lr=0.5,seed=0")]
    parsed = classifier.get_args(argv)  # the real script takes the command line
    assert parsed.lr == 0.5 and parsed.random_init and not parsed.use_gpu
    assert sweep.main(["run", str(grid), "--out_dir", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "1/4 lr=0.25,seed=0: finished, skipped" in printed
    assert "2/4 lr=0.25,seed=1: new" in printed
    assert sweep.main(["aggregate", str(out)]) == 0
    with (out / "summary.csv").open() as handle:
        rows = {row["run"]: row for row in csv.DictReader(handle)}
    assert rows["lr=0.5,seed=0"]["task"] == "sst"
    assert float(rows["lr=0.5,seed=0"]["best_dev_acc"]) == 0.5
    assert rows["lr=0.5,seed=0"]["epoch"] == "2" and rows["lr=0.5,seed=0"]["dev_f1"] == "0.2"
    assert rows["lr=0.25,seed=1"]["best_dev_acc"] == ""  # failed: listed, no metrics


def test_a_sweep_of_the_real_classifier_tables_its_dev_metrics(subset, make_checkpoint,
                                                               tmp_path, monkeypatch):
    """classifier.py itself (a tiny random checkpoint, 8 training sentences), two runs: its
    metrics log holds each epoch's dev accuracy and F1, and summary.csv tables them under
    unique headers, beside the grid's task and epochs as given."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    grid = write_grid(tmp_path, 'script = "classifier.py"\nseeds = [0]\n[base]\n'
                      '[grid]\nlr = [0.001, 0.002]\n',
                      {"task": "sst", "epochs": 1, "model_path": str(make_checkpoint(**SIZES)),
                       "data_dir": str(subset), "tokenizer": str(subset / "gpt2-tokenizer"),
                       "max_train_examples": 8, "max_length": 32})
    out = tmp_path / "s"
    assert sweep.main(["run", str(grid), "--out_dir", str(out)]) == 0
    logged = read_metrics(out / "lr=0.001,seed=0" / "sst-metrics.jsonl")
    assert len(logged) == 1 and 0 <= logged[0]["dev_acc"] <= 1 and 0 <= logged[0]["dev_f1"] <= 1
    assert sweep.main(["aggregate", str(out)]) == 0
    with (out / "summary.csv").open(newline="") as handle:
        header, *table = list(csv.reader(handle))
    assert len(header) == len(set(header)), header
    rows = [dict(zip(header, row, strict=True)) for row in table]
    assert [row["run"] for row in rows] == ["lr=0.001,seed=0", "lr=0.002,seed=0"]
    for row in rows:
        assert (row["task"], row["epochs"], row["evaluated_task"]) == ("sst", "1", "sst")
        assert 0 <= float(row["best_dev_acc"]) <= 1 and 0 <= float(row["dev_f1"]) <= 1
        assert (row["epoch"], row["evaluations"]) == ("1", "1")
    assert float(rows[0]["best_dev_acc"]) == logged[0]["dev_acc"]


@pytest.mark.parametrize("text, message", [
    ('script = "sonnet.py"\nseeds = [0]\n', "script = 'sonnet.py': choose one of"),
    ('script = "classifier.py"\nseeds = [0]\n[grid]\nn_layer = [1, 2]\n',
     "[grid] n_layer: classifier.py has no flag --n_layer"),
    ('script = "paraphrase_detection.py"\nseeds = [0]\n[base]\ncheckpoint_dir = "x"\n',
     "checkpoint_dir is set by the sweep"),
])
def test_a_bad_task_grid_is_refused_naming_the_file_and_key(tmp_path, text, message):
    path = write_grid(tmp_path, text)
    with pytest.raises(GridError) as error:
        read_grid(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)

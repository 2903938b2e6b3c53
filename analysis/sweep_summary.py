"""Two tables and two figures for finished ``pretrain.py`` runs: a sweep's, or any folders.

For every run (an out folder with ``metrics.jsonl`` and ``ckpt.pt``), one row of
``summary.csv``:

- ``run`` (the folder name), the flags that differ between the runs (read from each
  checkpoint's ``config``, the run's pretrain.py arguments; ``out_dir``, ``init_from`` and
  ``wandb_run_name`` are not compared), ``seed``;
- from the metrics log: ``iter`` (the checkpoint's step), ``train_loss`` (the last logged
  one, regularised where z-loss or mu-loss is on), ``train_cross_entropy`` (the plain
  cross-entropy beside it; ``train_loss`` when the loss has no parts), ``val_loss``,
  ``perplexity`` and ``bits_per_byte`` of the last evaluation (bits per byte empty where
  the corpus gives none), ``loss_spikes`` (`loss_spikes`), ``time_s`` (the training time
  of the last logged row, resumed runs included), ``tokens`` (tokens trained on by then)
  and ``tokens_per_s`` (their ratio);
- from the checkpoint, over N seeded windows of the validation split (the same windows for
  every run of one block size): ``largest_activation``, the largest layer-wise top-1 |h| of
  `analysis.outliers.analyse` (mean over the windows of each window's largest block-output
  magnitude) and its ``largest_activation_layer``; ``largest_logit``, the mean over the
  windows of each window's largest logit (over positions and vocabulary); ``parameters``,
  the model's parameter count (a tied embedding counted once).

``summary_by_group.csv`` has one row per group of runs that differ only in the seed: the
varying flags, ``runs`` (how many seeds), and ``<metric>_mean`` and ``<metric>_std`` for
each numeric metric (the sample standard deviation over the seeds, empty for one seed).

Beside it: ``outliers.csv`` / ``outliers.json`` (`analysis.outliers.write_tables`, one model
per run), ``val_loss.png`` (validation loss against steps) and ``largest_activation.png``
(top-1 per layer, `analysis.plots.plot_compare`), one line per group of runs that differ
only in the seed, averaged over its seeds (the band spans their lowest and highest); each
figure is titled with the output folder's name.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from analysis.outliers import analyse, load_model, sample_windows, write_tables
from analysis.plots import plot_compare, plot_curves
from models.gpt2 import GPT2Model
from training.checkpoint import load_checkpoint
from training.lm_data import load_lm_tokenizer, open_split
from training.metrics import read_metrics
from training.sweeps import RUNS_FILE, read_runs

SPIKE_RATIO = 0.1  # a logged train loss 10% above the lowest one before it is a spike
NOT_COMPARED = ("out_dir", "init_from", "wandb_run_name")
METRICS = ("iter", "train_loss", "train_cross_entropy", "val_loss", "perplexity",
           "bits_per_byte", "largest_activation", "largest_activation_layer", "largest_logit",
           "loss_spikes", "parameters", "time_s", "tokens", "tokens_per_s")
GROUPED = tuple(key for key in METRICS if key != "largest_activation_layer")


def loss_spikes(losses: Sequence[float], ratio: float = SPIKE_RATIO) -> int:
    """The number of logged losses that exceed (1 + ratio) x the lowest loss logged before
    them (the running minimum, the first loss excluded).  Example, ratio 0.1:
    [3.0, 2.0, 2.1, 2.3, 1.9, 2.2] -> 2 (2.3 > 2.2 and 2.2 > 2.09; 2.1 is not)."""
    spikes, lowest = 0, float("inf")
    for loss in losses:
        spikes += loss > (1 + ratio) * lowest
        lowest = min(lowest, loss)
    return spikes


def final_metrics(rows: list[dict], ratio: float = SPIKE_RATIO) -> dict[str, float | None]:
    """The last logged train loss (and plain cross-entropy), the last evaluation's
    val_loss, perplexity and bits_per_byte, the loss spikes of the cross-entropy, and the
    training time, tokens and tokens per second of the last row."""
    trained = [row for row in rows if row["train_loss"] is not None]
    evaluated = [row for row in rows if row["val_loss"] is not None]
    if not trained or not evaluated:
        raise ValueError("the metrics log has no training or no validation row yet")
    cross_entropy = [row.get("train_cross_entropy", row["train_loss"]) for row in trained]
    last = evaluated[-1]
    return {"train_loss": trained[-1]["train_loss"], "train_cross_entropy": cross_entropy[-1],
            "val_loss": last["val_loss"], "perplexity": last["perplexity"],
            "bits_per_byte": last["bits_per_byte"],
            "loss_spikes": loss_spikes(cross_entropy, ratio), "time_s": rows[-1]["time_s"],
            "tokens": rows[-1]["tokens"],
            "tokens_per_s": rows[-1]["tokens"] / rows[-1]["time_s"] if rows[-1]["time_s"] else None}


@torch.no_grad()
def largest_logit(model: GPT2Model, windows: torch.Tensor, batch_size: int = 8) -> float:
    """The mean over windows [N, T] of each window's largest logit (over T x V)."""
    device = next(model.parameters()).device
    largest = []
    for batch in windows.split(batch_size):
        batch = batch.to(device)
        hidden = model(batch, torch.ones_like(batch))["last_hidden_state"]  # (B, T, D)
        logits = model.hidden_state_to_token(hidden)  # (B, T, V)
        largest.append(logits.double().amax(dim=(1, 2)).cpu())  # (B,)
    return float(torch.cat(largest).mean())


def run_folders(paths: Sequence[str | Path]) -> dict[str, Path]:
    """{run name: folder}: a sweep folder (with runs.json) gives its runs, in array order,
    that have a checkpoint (the others are reported and left out); any other path is one
    pretrain.py out folder, named by its folder."""
    runs: dict[str, Path] = {}
    for path in map(Path, paths):
        if (path / RUNS_FILE).is_file():
            found = {name: path / name for name in read_runs(path)}
            missing = [name for name, folder in found.items()
                       if not (folder / "ckpt.pt").is_file()]
            if missing:
                print(f"[sweep] {path}: no checkpoint yet, left out: {', '.join(missing)}")
            found = {name: folder for name, folder in found.items() if name not in missing}
        else:
            for name in ("metrics.jsonl", "ckpt.pt"):
                if not (path / name).is_file():
                    raise FileNotFoundError(f"{path / name} not found: pass pretrain.py out "
                                            "folders or sweep folders (with runs.json)")
            found = {path.resolve().name: path}
        for name in found.keys() & runs.keys():
            raise ValueError(f"two runs are named {name!r} ({runs[name]}, {found[name]}); "
                             "give each run folder its own name")
        runs.update(found)
    if not runs:
        raise ValueError(f"no finished run in {[str(p) for p in paths]}")
    return runs


def summarize_run(run_dir: Path, windows: int, seed: int, batch_size: int,
                  data_dir: str | None, device: str,
                  ratio: float = SPIKE_RATIO) -> tuple[dict, list[dict], dict]:
    """(summary values, the outlier rows of `analysis.outliers.analyse`, the run's config)."""
    checkpoint = run_dir / "ckpt.pt"
    state = load_checkpoint(checkpoint)
    config = state["config"]
    data = data_dir or config["data_dir"]
    tokens = np.asarray(open_split(data, "val"))
    tokenizer = load_lm_tokenizer(data)
    chosen = sample_windows(tokens, windows, config["block_size"], seed)  # (N, T)
    model = load_model(str(checkpoint)).to(device)
    layers = analyse(model, chosen, lambda i: tokenizer.decode([i]), batch_size)
    top = max(layers, key=lambda row: row["top1"])
    try:
        logged = final_metrics(read_metrics(run_dir / "metrics.jsonl"), ratio)
    except ValueError as error:
        raise ValueError(f"{run_dir / 'metrics.jsonl'}: {error}") from None
    values = {"iter": state["iter_num"], **logged,
              "largest_activation": top["top1"], "largest_activation_layer": top["layer"],
              "largest_logit": largest_logit(model, chosen, batch_size),
              "parameters": sum(p.numel() for p in model.parameters())}
    return values, layers, config


def varying_flags(configs: list[dict]) -> list[str]:
    """The flags whose values differ between the runs, in pretrain.py's order, less seed."""
    keys = [key for key in configs[0] if key not in (*NOT_COMPARED, "seed")]
    return [key for key in keys if len({repr(config.get(key)) for config in configs}) > 1]


def group_label(config: dict, keys: list[str]) -> str:
    """The label of the runs that differ only in the seed: the value of the one varying flag,
    ``key=value`` pairs for several, ``all runs`` for none."""
    if len(keys) == 1:
        return str(config[keys[0]])
    return ",".join(f"{key}={config[key]}" for key in keys) or "all runs"


def group_rows(rows: list[dict], groups: dict[str, list[str]], keys: list[str]) -> list[dict]:
    """One row per group ({label: run names}) of summary rows: the varying flags, ``runs``,
    and the mean and sample standard deviation (ddof 1; None for one run) of each metric of
    `GROUPED` over the group's runs (a metric missing in some run is left out: None)."""
    by_run = {row["run"]: row for row in rows}
    grouped = []
    for names in groups.values():
        members = [by_run[name] for name in names]
        out = {**{key: members[0][key] for key in keys}, "runs": len(members)}
        for metric in GROUPED:
            values = [row[metric] for row in members]
            known = None not in values
            out[f"{metric}_mean"] = float(np.mean(values)) if known else None
            out[f"{metric}_std"] = (float(np.std(values, ddof=1))
                                    if known and len(values) > 1 else None)
        grouped.append(out)
    return grouped


def aggregate(paths: Sequence[str | Path], out_dir: str | Path, windows: int = 64,
              seed: int = 0, batch_size: int = 8, data_dir: str | None = None,
              device: str = "cpu", spike_ratio: float = SPIKE_RATIO) -> list[dict]:
    """Summarise the runs that `run_folders` finds in ``paths`` into ``out_dir``
    (summary.csv, summary_by_group.csv, outliers.csv/json, val_loss.png,
    largest_activation.png); returns the
    rows of summary.csv."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries, results, configs, curves = {}, {}, {}, {}
    for name, folder in run_folders(paths).items():
        print(f"[sweep] summarising {name}")
        summaries[name], layers, configs[name] = summarize_run(
            folder, windows, seed, batch_size, data_dir, device, spike_ratio)
        results[name] = {"source": str(folder), "config": configs[name], "layers": layers}
        curves[name] = {row["iter"]: row["val_loss"]
                        for row in read_metrics(folder / "metrics.jsonl")
                        if row["val_loss"] is not None}
    keys = varying_flags(list(configs.values()))
    rows = [{"run": name, **{key: configs[name].get(key) for key in (*keys, "seed")},
             **summaries[name]} for name in summaries]
    with open(out_dir / "summary.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["run", *keys, "seed", *METRICS])
        writer.writeheader()
        writer.writerows(rows)
    write_tables(results, {"runs": [str(p) for p in paths], "windows": windows, "seed": seed,
                           "split": "val"}, out_dir)
    groups: dict[str, list[str]] = {}
    for name, config in configs.items():
        groups.setdefault(group_label(config, keys), []).append(name)
    by_group = group_rows(rows, groups, keys)
    with open(out_dir / "summary_by_group.csv", "w", newline="", encoding="utf-8") as handle:
        columns = [f"{metric}_{stat}" for metric in GROUPED for stat in ("mean", "std")]
        writer = csv.DictWriter(handle, [*keys, "runs", *columns])
        writer.writeheader()
        writer.writerows(by_group)
    mean_curves, mean_layers = {}, {}
    for label, names in groups.items():
        steps = sorted(set.intersection(*(set(curves[name]) for name in names)))
        losses = np.array([[curves[name][step] for step in steps] for name in names])  # (S, I)
        mean_curves[label] = (steps, losses.mean(0), losses.min(0), losses.max(0))
        top1 = np.array([[row["top1"] for row in results[name]["layers"]] for name in names])
        mean_layers[label] = [{"layer": layer, "top1": value}
                              for layer, value in enumerate(top1.mean(0))]  # over seeds
    title = out_dir.resolve().name
    plot_curves(mean_curves, "validation loss (nats per token)", out_dir / "val_loss.png",
                f"{title}: validation loss")
    plot_compare(mean_layers, out_dir / "largest_activation.png", title)
    print(f"[sweep] wrote {out_dir}/summary.csv ({len(rows)} runs), summary_by_group.csv "
          f"({len(by_group)} groups), outliers.csv, val_loss.png, largest_activation.png")
    return rows

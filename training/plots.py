"""Curves drawn from a metrics log, after training (the loop never draws)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from training.metrics import read_metrics  # noqa: E402


def _same(y: float) -> float:
    return y


# file -> (y label, y scale, [(metrics key, legend, value -> y)])
CURVES = {
    "loss.png": ("loss (nats per token)", "linear",
                 [("train_loss", "train", _same), ("val_loss", "validation", _same)]),
    "perplexity.png": ("perplexity", "log",
                       [("train_loss", "train", math.exp), ("perplexity", "validation", _same)]),
}


def plot_metrics(metrics_path: str | Path, out_dir: str | Path,
                 run_name: str | None = None) -> list[Path]:
    """Draw ``loss.png`` and ``perplexity.png`` (train and validation against steps) from
    the log at ``metrics_path`` into ``out_dir``, each titled ``<run name>: <quantity>``
    (run name: ``out_dir``'s folder name unless given); returns the files written."""
    run_name = run_name or Path(out_dir).resolve().name
    rows = read_metrics(metrics_path)
    written = []
    for name, (label, scale, series) in CURVES.items():
        figure, axes = plt.subplots(figsize=(6, 4))
        for key, legend, to_y in series:
            points = [(row["iter"], to_y(row[key])) for row in rows if row.get(key) is not None]
            if points:
                axes.plot(*zip(*points, strict=True), label=legend,
                          marker=None if key == "train_loss" else "o")
        axes.set(xlabel="step", ylabel=label, yscale=scale, title=f"{run_name}: {label}")
        axes.grid(alpha=0.3)
        axes.legend()
        figure.tight_layout()
        path = Path(out_dir) / name
        figure.savefig(path, dpi=120)
        plt.close(figure)
        written.append(path)
    return written

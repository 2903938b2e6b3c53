"""The figures of the outlier analysis (`analysis.outliers`), each written to a PNG file.

- `plot_layerwise`: top-1, top-2, top-3 and median |h| of the block outputs against the
  layer (the outlier study's figure), with the attention on the first position below;
- `plot_token_channels`: a 3-D view of one block output on a prompt, |h| over tokens and
  channels (massive activations stand out as a few spikes);
- `plot_compare`: the top-1 per layer of several models, one line each;
- `plot_curves`: a metric against training steps for several groups of runs (a sweep's
  validation losses, `analysis.sweep_summary`), the mean with a band from lowest to highest.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

# statistic -> (legend, marker) of the layer-wise figure
STATISTICS = {"top1": ("top 1", "o"), "top2": ("top 2", "s"), "top3": ("top 3", "^"),
              "median": ("median", "x")}


def plot_layerwise(layers: list[dict], title: str, path: str | Path) -> Path:
    """Draw the rows of `analysis.outliers.analyse` (one per layer) into `path`: magnitudes
    above (one line per statistic), attention on the first position (and on k') below."""
    x = [row["layer"] for row in layers]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(6, 6), sharex=True,
                                         gridspec_kw={"height_ratios": (2, 1)})
    for key, (legend, marker) in STATISTICS.items():
        top.plot(x, [row[key] for row in layers], marker=marker, label=legend)
    top.set_ylabel("magnitude |h| (mean over windows)")
    top.set_title(f"{title}: block outputs")
    top.legend()
    bottom.plot(x, [row["first_position_attention"] for row in layers], marker="o",
                label="first position")
    if layers[0]["bias_key_attention"] is not None:
        bottom.plot(x, [row["bias_key_attention"] for row in layers], marker="s",
                    label="bias key k'")
    bottom.set_ylabel("attention weight")
    bottom.set_ylim(0.0, 1.05)
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_xlabel("block (gpt_layers index)")
    bottom.legend()
    return _save(figure, path)


def plot_token_channels(hidden: torch.Tensor, tokens: list[str], title: str,
                        path: str | Path) -> Path:
    """Draw |hidden| [T, D] of one block on a prompt as a 3-D surface, tokens along one axis
    (labelled with `tokens`, T strings) and channels along the other, into `path`."""
    magnitude = hidden.abs().double().numpy()  # (T, D)
    T, D = magnitude.shape
    channels, positions = np.meshgrid(np.arange(D), np.arange(T))  # (T, D) each
    figure = plt.figure(figsize=(8, 6))
    axes = figure.add_subplot(projection="3d")
    axes.plot_surface(positions, channels, magnitude, cmap="coolwarm", linewidth=0,
                      rstride=1, cstride=max(1, D // 256))
    axes.set_yticks(np.linspace(0, D - 1, min(D, 5)).round())
    axes.set_xticks(range(T))
    axes.set_xticklabels([repr(token)[1:-1] for token in tokens], rotation=90, fontsize=7)
    axes.set_ylabel("channel")
    axes.set_zlabel("|h|")
    axes.set_title(title)
    return _save(figure, path)


def plot_compare(models: dict[str, list[dict]], path: str | Path, title: str) -> Path:
    """Draw the top-1 magnitude per layer of each model ({label: rows}) into `path`, titled
    ``<title>: largest activation per layer`` (title: the study or sweep folder's name)."""
    figure, axes = plt.subplots(figsize=(6, 4))
    for label, layers in models.items():
        axes.plot([row["layer"] for row in layers], [row["top1"] for row in layers],
                  marker="o", label=label)
    axes.set_xlabel("block (gpt_layers index)")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("top-1 magnitude |h| (mean over windows)")
    axes.set_title(f"{title}: largest activation per layer")
    axes.legend()
    return _save(figure, path)


def plot_curves(curves: dict[str, tuple], ylabel: str, path: str | Path, title: str) -> Path:
    """Draw {label: (steps [I], mean [I], low [I], high [I])} into `path`: one line per
    label, with a shaded band where low and high differ (several seeds), titled ``title``."""
    figure, axes = plt.subplots(figsize=(6, 4))
    for label, (steps, mean, low, high) in curves.items():
        (line,) = axes.plot(steps, mean, marker="o", markersize=3, label=label)
        if np.any(np.asarray(high) > np.asarray(low)):
            axes.fill_between(steps, low, high, color=line.get_color(), alpha=0.2)
    axes.set(xlabel="step", ylabel=ylabel, title=title)
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(figure, path)


def _save(figure: plt.Figure, path: str | Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return Path(path)

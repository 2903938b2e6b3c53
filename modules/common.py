"""The two building blocks every module makes, with or without biases (`config.bias`).

`config.bias=False` is nanoGPT's option, used by the systematic-outliers study: no Linear
and no LayerNorm has a bias.  Every module builds its projections and norms here, so the
switch is read in this one place.
"""

from __future__ import annotations

from torch import nn

from config import GPT2Config


def linear(config: GPT2Config, in_features: int, out_features: int,
           kind: type[nn.Linear] = nn.Linear) -> nn.Linear:
    """kind(in_features, out_features) (an nn.Linear), with a bias iff config.bias."""
    return kind(in_features, out_features, bias=config.bias)


def layer_norm(config: GPT2Config, width: int) -> nn.LayerNorm:
    """nn.LayerNorm(width) with config.layer_norm_eps, with a bias iff config.bias."""
    return nn.LayerNorm(width, eps=config.layer_norm_eps, bias=config.bias)

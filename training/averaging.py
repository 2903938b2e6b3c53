"""Checkpoint averaging: the element-wise mean of the weights of several checkpoints.

Averaging the last few checkpoints of a run (Vaswani et al. 2017 averaged the last 5 or 20)
often gives a lower validation loss than the last one alone, at no training cost. The rule,
for each entry of the state dicts (all with the same names and shapes):

- floating-point tensors: the mean, summed in float64 and cast back to their dtype;
- integer and boolean tensors (step counters, masks): left alone, taken from the last;
- entries that share storage in the last checkpoint (tied weights, e.g. an output head tied
  to the word embedding) are averaged once and stay one tensor, so they stay tied.

Example: weights [1., 2.], [3., 4.] and [5., 9.] average to [3., 5.].
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from training.checkpoint import KEPT_PATTERN, load_checkpoint


def checkpoint_iter(checkpoint: dict[str, Any], path: str | os.PathLike) -> int:
    """The ``iter_num`` a checkpoint was saved at; ValueError naming the file without one."""
    if not isinstance(checkpoint.get("iter_num"), int):
        raise ValueError(f"{path} has no integer iter_num, so its place in the run is unknown; "
                         "pass the checkpoints in order with --checkpoints")
    return checkpoint["iter_num"]


def last_checkpoints(directory: str | os.PathLike, n: int) -> list[Path]:
    """The ``n`` checkpoints (``*.pt``) of ``directory`` with the highest ``iter_num``,
    oldest first.  Files at the same step (``ckpt.pt`` and ``best.pt`` repeat one) count
    once: the kept ``ckpt_<iter>.pt`` (``pretrain.py --keep_checkpoints``) if there is one,
    else the first by name.  Averages made earlier (they carry ``averaged_from``) are
    skipped.  Raises ValueError when the folder holds fewer than ``n``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint folder not found: {directory}")
    by_iter: dict[int, Path] = {}
    kept_first = sorted(directory.glob("*.pt"),
                        key=lambda path: (not KEPT_PATTERN.fullmatch(path.name), path.name))
    for path in kept_first:
        checkpoint = load_checkpoint(path, keys=("model", "model_args"))
        if "averaged_from" not in checkpoint:
            by_iter.setdefault(checkpoint_iter(checkpoint, path), path)
    if len(by_iter) < n:
        raise ValueError(f"{directory} holds checkpoints of {len(by_iter)} distinct steps "
                         f"({sorted(by_iter)}), fewer than the {n} asked for")
    return [by_iter[i] for i in sorted(by_iter)[-n:]]


def average_state_dicts(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The average of ``states`` by the module's rule (floats averaged in float64, integers
    and booleans from the last, shared storage kept shared).  Raises ValueError naming the
    state and key when names, shapes or dtypes differ."""
    if not states:
        raise ValueError("no checkpoints to average")
    last = states[-1]
    for k, state in enumerate(states):
        if set(state) != set(last):
            raise ValueError(f"checkpoint {k} has different weights from the last: missing "
                             f"{sorted(set(last) - set(state))}, extra "
                             f"{sorted(set(state) - set(last))}")
        for name, tensor in state.items():
            if tensor.shape != last[name].shape or tensor.dtype != last[name].dtype:
                raise ValueError(f"checkpoint {k}: {name} is {tuple(tensor.shape)} "
                                 f"{tensor.dtype}, the last checkpoint's is "
                                 f"{tuple(last[name].shape)} {last[name].dtype}")
    averaged: dict[str, torch.Tensor] = {}
    shared: dict[tuple, torch.Tensor] = {}  # (storage, offset, shape, stride) -> averaged
    for name, tensor in last.items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(),
               tuple(tensor.shape), tensor.stride())
        if key not in shared:
            if tensor.is_floating_point():
                total = sum(state[name].double() for state in states)
                shared[key] = (total / len(states)).to(tensor.dtype)
            else:
                shared[key] = tensor.clone()
        averaged[name] = shared[key]
    return averaged


def average_checkpoints(paths: Sequence[str | os.PathLike]) -> dict[str, Any]:
    """A checkpoint whose ``model`` averages those of ``paths`` (oldest first).

    The other entries are the last checkpoint's, except ``optimizer`` (dropped: it belongs
    to the last weights) and ``averaged_from`` (the paths).  Raises ValueError when the
    checkpoints' ``model_args`` differ.
    """
    checkpoints = [load_checkpoint(path, keys=("model", "model_args")) for path in paths]
    last = checkpoints[-1]
    for path, checkpoint in zip(paths, checkpoints, strict=True):
        if checkpoint["model_args"] != last["model_args"]:
            raise ValueError(f"{path} has model_args {checkpoint['model_args']}, but "
                             f"{paths[-1]} has {last['model_args']}: only checkpoints of one "
                             "model average")
    averaged = average_state_dicts([c["model"] for c in checkpoints])
    extra = {key: value for key, value in last.items() if key not in ("model", "optimizer")}
    return {**extra, "model": averaged, "averaged_from": [str(p) for p in paths]}

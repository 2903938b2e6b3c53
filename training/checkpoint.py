"""Checkpoints as a plain dict (nanoGPT's keys), written atomically.

A checkpoint holds ``model`` (a plain state dict, as ``torch.distributed.checkpoint``'s
``get_model_state_dict`` gives it: no ``_orig_mod.`` from ``torch.compile``, no ``module.``
from DistributedDataParallel, whole tensors under FSDP), ``optimizer``, ``model_args`` (the
``GPT2Config`` fields), ``iter_num``, ``best_val_loss`` and ``config`` (the run's flags),
plus what an exact resume needs: ``rng`` (the random states of every rank) and ``data``
(the position of the batch sampler).  ``training.trainer.Trainer.checkpoint`` makes one.

``save_checkpoint`` writes to a temporary file beside the target, flushes it to disk and
renames it into place, so a run killed while saving keeps its previous checkpoint whole.
A run may also keep its last N evaluation checkpoints, ``ckpt_<iter>.pt`` (``kept_name``;
``prune_kept`` deletes the older ones), which ``average_checkpoints.py`` averages.

``load_checkpoint`` is the one reader, for every script and ``model_from_checkpoint`` (a
checkpoint's ``GPT2Model``): it raises ``CheckpointError`` (a ValueError) naming the file, and scripts
turn that into a message.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from config import GPT2Config
from models.gpt2 import GPT2Model

TEMP_SUFFIX = ".tmp"
# Name prefixes that torch.compile (`_orig_mod.`) and DDP (`module.`) put on state-dict keys.
COMPILE_PREFIX = re.compile(r"^(?:_orig_mod\.|module\.)+")
KEPT_PATTERN = re.compile(r"ckpt_(\d+)\.pt")  # a kept evaluation checkpoint, ckpt_<iter>.pt


def rng_state() -> dict[str, Any]:
    """Every random state a training step draws from: Python, NumPy, torch (CPU, CUDA)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` with ``torch.save`` to ``path`` atomically: into ``path.tmp`` first,
    flushed to disk, then renamed over ``path``.  Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + TEMP_SUFFIX)
    with open(temp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)
    return path


def kept_name(iter_num: int) -> str:
    """The file name of the checkpoint kept at step ``iter_num``: ``ckpt_<iter_num>.pt``."""
    return f"ckpt_{iter_num}.pt"


def prune_kept(directory: str | Path, keep: int) -> list[Path]:
    """Delete the kept checkpoints (``ckpt_<iter>.pt``) of ``directory`` but the ``keep``
    of the highest steps; returns the deleted paths.  Example: ckpt_3, ckpt_6, ckpt_9 and
    keep 2 delete ckpt_3.pt."""
    if keep < 1:
        raise ValueError(f"prune_kept: keep must be >= 1, got {keep}")
    kept = sorted((int(match[1]), path) for path in Path(directory).iterdir()
                  if (match := KEPT_PATTERN.fullmatch(path.name)))
    old = [path for _, path in kept[:-keep]]
    for path in old:
        path.unlink()
    return old


class CheckpointError(ValueError):
    """A checkpoint file that is missing, unreadable, or lacks a key its reader needs."""


class CheckpointNotFound(CheckpointError, FileNotFoundError):
    """No file at the checkpoint's path (also a FileNotFoundError)."""


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                    keys: tuple[str, ...] = ("model",)) -> dict[str, Any]:
    """The dict ``save_checkpoint`` wrote at ``path``: the one reader of checkpoints, for
    every script (a task's, ``pretrain.py``'s, an average's).

    Tensors come memory-mapped and onto ``map_location``.  ``keys`` are the keys the caller
    needs (``model_from_checkpoint`` asks for ``model`` and ``model_args``).  Raises
    ``CheckpointNotFound`` (a ValueError and a FileNotFoundError) for a missing file and
    ``CheckpointError`` (a ValueError) for an unreadable one or a missing key, each naming
    the file; scripts turn them into a message.  A checkpoint holding more than tensors and
    plain values (the numpy RNG state of an exact resume) is unpickled in full: load only
    checkpoints you trust.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFound(f"checkpoint not found: {path}")
    try:
        try:
            state = torch.load(path, map_location=map_location, mmap=True, weights_only=True)
        except pickle.UnpicklingError:
            state = torch.load(path, map_location=map_location, mmap=True, weights_only=False)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as error:
        raise CheckpointError(f"{path} is not a readable torch checkpoint ({error})") from None
    if not isinstance(state, dict) or not set(keys) <= set(state):
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        needed = " and ".join(repr(key) for key in keys)
        raise CheckpointError(f"{path} is not a checkpoint of this kit: it needs the keys "
                              f"{needed}, found {found}")
    return state


def model_from_checkpoint(path: str | os.PathLike, **config_overrides: Any) -> GPT2Model:
    """The ``GPT2Model`` of a checkpoint that ``pretrain.py`` wrote (``ckpt.pt``, ``best.pt``).

    The file holds ``model`` (the state dict; ``_orig_mod.`` and ``module.`` prefixes, left
    by ``torch.compile`` and DDP, are stripped) and ``model_args`` (the ``GPT2Config``
    fields); ``config_overrides`` change fields (e.g. ``hidden_dropout_prob=0.0``).  Every
    weight must match the model (strict).  Raises ValueError naming the file and the
    problem (a missing file's is also a FileNotFoundError).  The model is on the CPU, in
    training mode.
    """
    checkpoint = load_checkpoint(path, keys=("model", "model_args"))
    fields = {f.name for f in dataclasses.fields(GPT2Config)}
    unknown = sorted(set(checkpoint["model_args"]) - fields)
    if unknown:
        raise CheckpointError(f"{path}: model_args has fields {unknown} that GPT2Config lacks")
    model = GPT2Model(GPT2Config(**{**checkpoint["model_args"], **config_overrides}))
    state = {COMPILE_PREFIX.sub("", name): tensor for name, tensor in checkpoint["model"].items()}
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path}: the weights do not match model_args: missing "
                              f"{missing}, unexpected {unexpected}")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(f"{path}: {name} has shape {tuple(tensor.shape)} but "
                                  f"model_args give {tuple(expected[name].shape)}")
    model.load_state_dict(state, strict=True)
    return model

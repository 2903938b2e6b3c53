"""Where the loop's batches come from.  A batch source hands out, per optimizer step, the
micro-batches of this process (``next_step``), and can save and restore its position
(``state_dict`` / ``load_state_dict``) for an exact resume.

- ``TokenBatches``: random windows of a token file (nanoGPT's ``train.bin``, uint16).
- ``LoaderBatches``: the batches of a ``DataLoader``, epoch after epoch (the task scripts).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader


class TokenBatches:
    """Windows of ``block_size + 1`` tokens at random offsets of ``tokens`` (a 1-D uint16
    array, usually the ``np.memmap`` of a ``train.bin``).

    Each step draws the offsets of the whole global batch, ``accumulation x world_size x
    batch_size`` windows, from one seeded generator that every process holds alike; the
    process of rank r keeps, in each micro-step, its own ``batch_size`` windows.  So the
    union of the windows of one step does not depend on how it is split into processes
    and micro-steps, and the generator state is the whole data position.

    Micro-batches are dicts ``{"input_ids": [B, T], "targets": [B, T]}`` (int64, on
    ``device``); ``targets`` is ``input_ids`` shifted left by one token.
    """

    def __init__(self, tokens: np.ndarray, block_size: int, batch_size: int,
                 accumulation: int = 1, rank: int = 0, world_size: int = 1, seed: int = 0,
                 device: torch.device | str = "cpu", name: str = "the token file"):
        if len(tokens) < block_size + 1:
            raise SystemExit(f"{name} holds {len(tokens)} tokens, fewer than block_size + 1 = "
                             f"{block_size + 1}; lower --block_size")
        self.tokens = tokens  # [N] uint16, usually an np.memmap
        self.block_size, self.batch_size, self.accumulation = block_size, batch_size, accumulation
        self.rank, self.world_size, self.device = rank, world_size, torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)

    def next_step(self) -> list[dict[str, torch.Tensor]]:
        """This process's ``accumulation`` micro-batches of the next optimizer step."""
        shape = (self.accumulation, self.world_size, self.batch_size)
        starts = torch.randint(len(self.tokens) - self.block_size, shape,
                               generator=self.generator)[:, self.rank]  # (A, B)
        return [self.windows(row.tolist()) for row in starts]

    def windows(self, starts: list[int]) -> dict[str, torch.Tensor]:
        """The windows that start at ``starts`` as a micro-batch."""
        span = np.stack([self.tokens[s:s + self.block_size + 1] for s in starts])  # (B, T + 1)
        span = torch.from_numpy(span.astype(np.int64))
        if self.device.type == "cuda":
            span = span.pin_memory().to(self.device, non_blocking=True)
        return {"input_ids": span[:, :-1], "targets": span[:, 1:]}  # (B, T) each

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


class LoaderBatches:
    """One batch of ``loader`` per step, epoch after epoch.  Its position is the epoch, the
    batch index in it and the shuffling generator's state at the start of the epoch."""

    def __init__(self, loader: DataLoader):
        self.loader = loader
        self.epoch, self.index = 0, 0
        self._start_epoch()

    def _start_epoch(self) -> None:
        generator = self.loader.generator
        self.epoch_state = None if generator is None else generator.get_state()
        self.iterator = iter(self.loader)

    def next_step(self) -> list[Any]:
        try:
            batch = next(self.iterator)
        except StopIteration:
            self.epoch, self.index = self.epoch + 1, 0
            self._start_epoch()
            batch = next(self.iterator)
        self.index += 1
        return [batch]

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "index": self.index, "epoch_state": self.epoch_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["epoch_state"] is not None:
            self.loader.generator.set_state(state["epoch_state"])
        self._start_epoch()
        self.epoch, self.index = state["epoch"], 0
        for _ in range(state["index"]):
            self.next_step()

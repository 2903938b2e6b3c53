"""Several processes, one model: the torchrun environment, the process group, and the rules.

``torchrun --nproc_per_node N script.py`` (or ``srun`` with torchrun's rendezvous) sets
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; without them the run is one process.  GPUs talk
over NCCL, CPUs over gloo.  Rank 0 alone logs and saves.  Every collective has a timeout,
so a rank that died or stalls ends the others with a message instead of a hang.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from modules.gpt2_layer import GPT2Layer

if TYPE_CHECKING:
    from torch.distributed.fsdp import FSDPModule

BACKENDS = {"cuda": "nccl", "cpu": "gloo"}


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0, the process that logs and saves."""
        return self.rank == 0


def setup(device_type: str, timeout_s: float = 300.0) -> tuple[Distributed, torch.device]:
    """Join the process group that torchrun describes (or none), and pick this rank's device:
    ``cuda:LOCAL_RANK`` for ``device_type == "cuda"``, else the CPU."""
    if "RANK" not in os.environ:
        return Distributed(), torch.device(device_type)
    missing = [v for v in ("LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
               if v not in os.environ]
    if missing:
        raise SystemExit(f"RANK is set but {missing} are not: launch with torchrun "
                         "(torchrun --nproc_per_node N ...), which sets them all")
    info = Distributed(int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]),
                       int(os.environ["WORLD_SIZE"]))
    device = torch.device(device_type)
    if device.type == "cuda":
        if info.local_rank >= torch.cuda.device_count():
            raise SystemExit(f"rank {info.rank}: LOCAL_RANK {info.local_rank} but only "
                             f"{torch.cuda.device_count()} GPU(s) are visible")
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group(BACKENDS[device.type], rank=info.rank, world_size=info.world_size,
                            timeout=timedelta(seconds=timeout_s),
                            device_id=device if device.type == "cuda" else None)
    return info, device


def teardown() -> None:
    """Leave the process group, if any."""
    if dist.is_initialized():
        dist.destroy_process_group()


def mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over all ranks (``value`` itself in a single process).
    Collective: every rank must call it."""
    if not dist.is_initialized():
        return value
    total = value.clone()
    dist.all_reduce(total)  # sum (gloo has no average)
    return total / dist.get_world_size()


class Progress:
    """Where each rank is, in the process group's key-value store (the rendezvous store),
    so that a rank whose collective failed can name the rank that fell behind or left."""

    PREFIX = "build-gpt2/progress/"

    def __init__(self, info: Distributed):
        self.info = info
        self.store = dist.distributed_c10d._get_default_store() if info.enabled else None

    def mark(self, text: str) -> None:
        """Record this rank's state, e.g. "at step 12" or "left at step 12 (SystemExit)"."""
        if self.store is not None:
            self.store.set(f"{self.PREFIX}{self.info.rank}", text)

    def report(self) -> str:
        """Every other rank's last state, e.g. "rank 1 left at step 1 (SystemExit)"."""
        if self.store is None:
            return ""
        states = []
        for rank in range(self.info.world_size):
            key = f"{self.PREFIX}{rank}"
            if rank != self.info.rank:
                try:
                    text = self.store.get(key).decode() if self.store.check([key]) else None
                except (RuntimeError, dist.DistStoreError):
                    text = None
                states.append(f"rank {rank} {text or 'never reported a step'}")
        return "; ".join(states)


class RankFailure(SystemExit):
    """A collective failed: another rank exited or stopped answering within the timeout."""

    def __init__(self, info: Distributed, error: BaseException, progress: Progress):
        super().__init__(
            f"rank {info.rank} of {info.world_size}: a collective operation failed because "
            f"another rank left or stopped answering: {progress.report() or 'unknown'} "
            f"({type(error).__name__}: {str(error).splitlines()[0]})")


def gather_objects(info: Distributed, value: Any) -> list[Any]:
    """``value`` of every rank, in rank order (``[value]`` in a single process).
    Collective."""
    if not info.enabled:
        return [value]
    values: list[Any] = [None] * info.world_size
    dist.all_gather_object(values, value)
    return values


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel: every rank holds the whole model; gradients are averaged."""
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                   else None)


def wrap_fsdp(model: nn.Module, device: torch.device) -> nn.Module:
    """FSDP2 (``fully_shard``): parameters, gradients and optimizer state sharded over the
    ranks, one unit per ``GPT2Layer`` and one for the rest (embeddings, final norm).
    FSDP shards contiguous tensors only, so weights stored input-major
    (``store_linears_input_major``) get back the row-major layout first, same values.
    FSDP is imported here, where it is used: importing it takes about a second, which every
    script that imports the trainer would pay."""
    from torch.distributed.fsdp import fully_shard

    for module in model.modules():
        for name, param in list(module.named_parameters(recurse=False)):
            if not param.is_contiguous():
                setattr(module, name, nn.Parameter(param.detach().contiguous(),
                                                   requires_grad=param.requires_grad))
    for module in model.modules():
        if isinstance(module, GPT2Layer):
            fully_shard(module)
    return fully_shard(model)


WRAPPERS = {"ddp": wrap_ddp, "fsdp": wrap_fsdp}  # --parallel choice -> wrapper


def gradient_sync(model: nn.Module, enabled: bool):
    """A context in which backward does (``enabled``) or does not all-reduce gradients:
    the inner micro-steps of gradient accumulation skip it, the last one syncs."""
    if enabled:
        return contextlib.nullcontext()
    if isinstance(model, DistributedDataParallel):
        return model.no_sync()
    fsdp = sys.modules.get("torch.distributed.fsdp")  # None until wrap_fsdp has run
    if fsdp is not None and isinstance(model, fsdp.FSDPModule):
        return _fsdp_no_sync(model)
    return contextlib.nullcontext()


@contextlib.contextmanager
def _fsdp_no_sync(model: FSDPModule):
    model.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)

"""Producers: the code the sandboxed child runs for each case (never run in the judge).

Every module here with a `PRODUCERS` dict is part of the registry; `trusted.py` holds the
trusted code the producers run around the function a case grades, and `solutions.py`
(staff only, never imported as a module: `autograder/child.py` loads it) the trusted
versions of fenced functions.

A producer takes a case's JSON `params`, builds seeded inputs, calls the student's code
(imported lazily, from the staged submission) and returns `{key: numpy array}`.  It only
*produces* arrays; all comparing happens in the parent (`autograder/judge.py`).  Outputs
must be plain `torch.Tensor`s: a subclass is refused, so that no student type can change
how its values are read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Producer = Callable[[dict[str, Any]], dict[str, np.ndarray]]

# Output key of a module's parameter names, as UTF-8 bytes of "name\nname..." (uint8): the
# judge does not score it, it compares it with the reference's names and lists the ones it
# did not expect.  Keys that start with "_" are such notes.
PARAMETER_NAMES = "_parameter_names"
# Output key of lines the producer tells the student (UTF-8 bytes of "line\nline...", uint8),
# e.g. that a trusted stand-in ignored the extra arguments of theirs: never scored.
NOTES = "_notes"
STAFF_MODULE = "solutions"  # the staff-only module, which `registry` never imports


def names_array(names: list[str]) -> np.ndarray:
    """`names`, sorted, as a uint8 array of their newline-joined UTF-8 bytes."""
    return np.frombuffer("\n".join(sorted(names)).encode(), dtype=np.uint8).copy()


def lines_array(lines: list[str]) -> np.ndarray:
    """`lines`, in order, as a uint8 array of their newline-joined UTF-8 bytes."""
    return np.frombuffer("\n".join(lines).encode(), dtype=np.uint8).copy()


def names_from_array(array: np.ndarray) -> list[str]:
    """The inverse of `names_array` and `lines_array` (undecodable bytes are replaced)."""
    text = np.asarray(array, dtype=np.uint8).tobytes().decode("utf-8", "replace")
    return text.split("\n") if text else []


def to_numpy(value: Any, what: str) -> np.ndarray:
    """A plain copy of a tensor's values; raises TypeError for anything but a torch.Tensor."""
    import torch

    if type(value) is not torch.Tensor:
        raise TypeError(f"{what} must be a plain torch.Tensor, got {type(value).__module__}."
                        f"{type(value).__qualname__}")
    tensor = torch.Tensor.detach(value).cpu()
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(f"{what} has dtype {tensor.dtype}; expected a real number dtype")
    array = np.array(tensor.tolist() if tensor.dtype == torch.bfloat16 else tensor.numpy(),
                     copy=True)
    return array


def registry() -> dict[str, Producer]:
    """name -> producer: the `PRODUCERS` of every module of this package but the staff
    module (a new module is found without being listed); imported here so that the child
    loads only what it runs.  A name given twice is a ValueError."""
    import importlib
    import pkgutil

    found: dict[str, Producer] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if info.name == STAFF_MODULE:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name, producer in getattr(module, "PRODUCERS", {}).items():
            if name in found:
                raise ValueError(f"producer {name!r} is defined twice ({info.name})")
            found[name] = producer
    return found

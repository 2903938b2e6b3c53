"""The trusted code the producers run around the function a case grades.

A case that grades one fenced function builds its other inputs and the scaffold around it
from trusted code, never from the submission, so that one bug costs only the cases of its
own rule.  Two kinds:

- the scaffold below (masks, GPT-2's activation, the loader's copy, a stand-in GPT), which
  no student writes, so it ships with the handout;
- trusted versions of *fenced* functions (`STANDS_FOR`), which are their solutions: they
  live in the staff-only `solutions.py`, which the child binds here (`bind`) on Gradescope
  and in the staff tree.  In the student's copy, which lacks it, the student's own
  functions stand in (`solution`), so locally one bug can fail more cases than on
  Gradescope.  `stand_in` makes a trusted version take the call the submission's scaffold
  makes to its own (extra arguments with defaults), and says so in the feedback.

torch is imported inside each function: the child imports it first, from its own site.
"""

from __future__ import annotations

import importlib
import inspect
import types
from collections.abc import Callable
from typing import Any


def extended_mask(lengths: list[int], length: int):
    """Trusted additive padding mask [B, 1, 1, T_k] for rows with `lengths` real keys."""
    import torch

    mask = (torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]).float()
    return (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min


def gelu_tanh():
    """GPT-2's activation (GELU, tanh approximation) as a module, so that it can replace
    `interm_af` whether `__init__` set a function or a module there."""
    import torch

    class TrustedGELU(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.gelu(x, approximate="tanh")

    return TrustedGELU()


def fixed_dropout(mask):
    """A deterministic stand-in for `nn.Dropout` (a module, so that it can replace one):
    multiplies its input by the fixed `mask` (0 or 1/(1-p) per element), in any mode, so a
    training-mode output is judged by value, not by its random draws."""
    import torch

    class FixedDropout(torch.nn.Module):
        def forward(self, x):
            return x * mask

    return FixedDropout()


def copy_mapped(model, mapped: Any) -> None:
    """The trusted loader's copy: each tensor `hf_to_ours` returned into the model's
    parameter of that name.  A name the model lacks, a shape mismatch or a non-tensor is a
    ValueError; parameters the mapping leaves out keep their seeded values."""
    import torch

    if not isinstance(mapped, dict):
        raise TypeError(f"hf_to_ours must return a dict, got {type(mapped).__name__}")
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in mapped.items():
            if name not in parameters:
                raise ValueError(f"hf_to_ours returned {name!r}, which is not a parameter of "
                                 "GPT2Model")
            if type(tensor) is not torch.Tensor or tensor.shape != parameters[name].shape:
                raise ValueError(f"hf_to_ours returned {name!r} as "
                                 f"{getattr(tensor, 'shape', type(tensor).__name__)}, the "
                                 f"parameter is {tuple(parameters[name].shape)}")
            parameters[name].copy_(tensor)


def stub_gpt(vocab_size: int, hidden_size: int, seed: int):
    """A tiny stand-in for `GPT2Model` under the task heads (handout 6.1, 6.2): a seeded
    embedding E [V, D]; `forward(input_ids, attention_mask)` gives last_hidden_state =
    tanh(E[input_ids]) [B, T, D] and last_token = its row at each row's last real token
    [B, D]; `hidden_state_to_token(x) = x @ E^T` [..., V]."""
    import torch

    class StubGPT(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = type("Config", (), {"hidden_size": hidden_size,
                                              "vocab_size": vocab_size})()
            generator = torch.Generator().manual_seed(seed)
            self.embedding = torch.nn.Parameter(
                torch.randn(vocab_size, hidden_size, generator=generator))

        def forward(self, input_ids, attention_mask):
            hidden = torch.tanh(self.embedding[input_ids])  # (B, T, D)
            last = attention_mask.sum(dim=1) - 1  # (B,)
            return {"last_hidden_state": hidden,
                    "last_token": hidden[torch.arange(hidden.shape[0]), last]}

        def hidden_state_to_token(self, hidden_state):
            return hidden_state @ self.embedding.T

    return StubGPT()


# trusted name -> the fenced function it stands for ("<file>:<qualname>").  The staff
# module `solutions.py` defines each name; a test checks both directions.
STANDS_FOR: dict[str, str] = {
    "attention": "modules/attention.py:CausalSelfAttention.attention",
    "add": "modules/gpt2_layer.py:GPT2Layer.add",
    "lora_delta_weight": "modules/lora.py:LoRALinear.delta_weight",
    "sigmoid_loss": "dpo.py:sigmoid_loss",
    "ipo_loss": "dpo.py:ipo_loss",
    "hinge_loss": "dpo.py:hinge_loss",
    "newton_schulz": "optimizer.py:newton_schulz",
    "symmetric_kl": "training/smart.py:symmetric_kl",
}
_bound: dict[str, Callable] = {}  # name -> the staff version, once `bind` ran


def _global_names(code: types.CodeType) -> set[str]:
    """Every global name `code` and the code objects nested in it read."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def bind(module: types.ModuleType) -> None:
    """Take the staff module's version of every name of `STANDS_FOR`, each rebuilt on a
    globals dict of its own that holds only the module globals it reads: a function handed
    to student code (the layer cases hand it the trusted attention) exposes itself, not
    the other solutions.  ValueError naming the names the module lacks."""
    missing = sorted(name for name in STANDS_FOR if not callable(getattr(module, name, None)))
    if missing:
        raise ValueError(f"{module.__file__}: the staff module defines no {missing}")
    for name in STANDS_FOR:
        function = getattr(module, name)
        scope = {key: value for key, value in vars(module).items()
                 if key in _global_names(function.__code__)}
        scope["__builtins__"] = vars(module)["__builtins__"]
        _bound[name] = types.FunctionType(function.__code__, scope, function.__name__,
                                          function.__defaults__, function.__closure__)


def solution(name: str) -> Callable:
    """What stands for trusted `name`: the staff version once bound, otherwise the
    submission's own fenced function (`STANDS_FOR[name]`, imported from the staged
    submission), e.g. `solution("add")` is `modules.gpt2_layer.GPT2Layer.add`."""
    if name in _bound:
        return _bound[name]
    rel, _, qualname = STANDS_FOR[name].partition(":")
    target: Any = importlib.import_module(rel.removesuffix(".py").replace("/", "."))
    for attribute in qualname.split("."):
        target = getattr(target, attribute)
    return target


def stand_in(name: str, own: Callable) -> tuple[Callable, str | None]:
    """`solution(name)`, made to accept the call the submission makes to its own version
    `own`: the arguments `own` adds to the handout's signature, with defaults (or through
    *args / **kwargs), are accepted and ignored.  Returns the callable and the note that
    says so (None when `own` adds nothing, or is itself what stands in)."""
    trusted = solution(name)
    try:
        theirs = inspect.signature(own).parameters
    except (TypeError, ValueError):
        return trusted, None
    ours = list(inspect.signature(trusted).parameters)
    extra = [arg for arg, parameter in theirs.items() if arg not in ours and (
        parameter.default is not inspect.Parameter.empty
        or parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD))]
    if own is trusted or not extra:
        return trusted, None

    def call(*args, **kwargs):
        return trusted(*args[: len(ours)], **{k: v for k, v in kwargs.items() if k in ours})

    qualname = STANDS_FOR[name].partition(":")[2]
    return call, (f"the grader's trusted {qualname} stood in for yours here: it accepted "
                  f"and ignored the extra argument(s) {extra} of your signature")

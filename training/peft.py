"""The `--peft` switch of the task scripts (flags in `training.args.add_peft_args`):
LoRA (`modules/lora.py`) or ReFT (`modules/reft.py`).

`apply_peft` adds the adapters the flags ask for and prints what trains.  Task checkpoints
(`training.checkpoint` dicts, written by `training.finetune.fit`) keep in "model" what
`checkpoint_state` selects and load back through `load_weights`: without peft the model's
whole state dict, with LoRA the adapters and the task head only, a few hundred kilobytes
for gpt2, with ReFT the interventions and the head; the LoRA settings are in the run flags
("config"), so `load_lora_into` can rebuild the adapters from the checkpoint (DPO starts
from such a checkpoint).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from models.base_gpt import gpt_backbones
from models.gpt2 import GPT2Model, copy_checked
from modules.lora import apply_lora, load_trainable_state_dict, merge_lora
from modules.reft import apply_reft, check_rank, parse_layers
from training.args import flag_error
from training.checkpoint import load_checkpoint


def lora_settings(args: argparse.Namespace) -> dict:
    """The `apply_lora` keyword arguments the --lora_* flags give."""
    return {"targets": list(args.lora_targets), "r": args.lora_r, "alpha": args.lora_alpha,
            "dropout": args.lora_dropout}


def reft_settings(args: argparse.Namespace) -> dict:
    """The `apply_reft` keyword arguments the --reft_* flags give."""
    return {"rank": args.reft_rank, "layers": args.reft_layers,
            "positions": args.reft_positions, "dropout": args.reft_dropout}


def lora_from_flags(model: nn.Module, args: argparse.Namespace) -> list[str]:
    """`apply_lora` with the --lora_* flags; exits naming --lora_targets when no layer of
    `model` has one of its names (the other flags are checked as they are parsed)."""
    try:
        return apply_lora(model, **lora_settings(args))
    except ValueError as error:
        flag_error(f"--lora_targets {' '.join(args.lora_targets)}: {error}")


def reft_from_flags(model: nn.Module, args: argparse.Namespace) -> list[str]:
    """`apply_reft` with the --reft_* flags; exits naming --reft_rank or --reft_layers and
    its value when a GPT-2 backbone of `model` is too narrow or too shallow for it (the
    other flags are checked as they are parsed)."""
    for backbone in gpt_backbones(model):
        config = backbone.config
        for flag, check in (
                ("reft_rank", partial(check_rank, args.reft_rank, config.hidden_size)),
                ("reft_layers", partial(parse_layers, args.reft_layers,
                                        config.num_hidden_layers))):
            try:
                check()
            except ValueError as error:
                flag_error(f"--{flag} {getattr(args, flag)}: {error}")
    return apply_reft(model, **reft_settings(args))


# --peft value -> function(model, args) that prepares the model and returns what it changed.
PEFT_METHODS: dict[str, Callable[[nn.Module, argparse.Namespace], list[str]]] = {
    "none": lambda model, args: [],
    "lora": lora_from_flags,
    "reft": reft_from_flags,
}


# --peft value -> the default learning rate of the task scripts (full fine-tuning: their own).
PEFT_LR = {"lora": 5e-4, "reft": 2e-3}


def trainable_summary(model: nn.Module) -> str:
    """E.g. "294,912 of 124,734,720 parameters train (0.236%)" (tied weights counted once)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return f"{trainable:,} of {total:,} parameters train ({trainable / total:.3%})"


def apply_peft(model: nn.Module, args: argparse.Namespace, name: str) -> list[str]:
    """Apply --peft to `model`, print "[name] peft ...: <trainable_summary>", return the
    names of the adapted layers (none without peft).  A flag value the model cannot take
    exits as argparse does, naming the flag and the value (`training.args.flag_error`)."""
    changed = PEFT_METHODS[args.peft](model, args)
    print(f"[{name}] peft {args.peft}"
          + (f" on {len(changed)} layers" if changed else "") + f": {trainable_summary(model)}")
    return changed


def keep_trainable(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The entries of `state` (the model's state dict) that train: the adapters and a head."""
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    return {key: value for key, value in state.items() if key in trainable}


# --peft value -> (what a task checkpoint's "model" keeps of the model's state dict,
#                  how it loads back into the same model, adapters already applied).
PEFT_CHECKPOINTS: dict[str, tuple[Callable[[nn.Module, dict], dict],
                                  Callable[[nn.Module, dict], object]]] = {
    "none": (lambda model, state: state, lambda model, state: model.load_state_dict(state)),
    "lora": (keep_trainable, load_trainable_state_dict),
    "reft": (keep_trainable, load_trainable_state_dict),
}


def checkpoint_state(model: nn.Module, peft: str,
                     state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The part of `model`'s state dict `state` that a task checkpoint holds under --peft:
    all of it without peft, the adapters (LoRA) or interventions (ReFT) and the task head."""
    return PEFT_CHECKPOINTS[peft][0](model, state)


def load_weights(model: nn.Module, peft: str, state: dict[str, torch.Tensor]) -> None:
    """Load what `checkpoint_state` kept into the same model (adapters already applied)."""
    PEFT_CHECKPOINTS[peft][1](model, state)


def load_lora_into(model: nn.Module, state: dict, prefix: str = "") -> list[str]:
    """Rebuild the adapters of a LoRA task checkpoint (a `training.checkpoint` dict: the
    settings from its run flags "config", the adapters from "model") on `model` and load
    them; keys are taken after `prefix` (e.g. "gpt." for a task model's backbone), other
    keys (a task head) are ignored.  Returns the adapted layer names."""
    names = apply_lora(model, **lora_settings(argparse.Namespace(**state["config"])))
    adapters = {key[len(prefix):]: value for key, value in state["model"].items()
                if key.startswith(prefix)}
    load_trainable_state_dict(model, adapters)
    return names


def load_backbone_checkpoint(gpt: GPT2Model, path: str) -> None:
    """Load a task script's checkpoint onto a bare `GPT2Model`: the backbone's weights of a
    whole state dict (keys "gpt.*" in a task model, or the model's own keys), or the
    adapters of a LoRA checkpoint, merged into the weights.  A task head is ignored; every
    parameter ends up trainable."""
    state = load_checkpoint(path)
    if state["config"].get("peft", "none") == "reft":
        raise ValueError(f"{path} is a ReFT checkpoint: its interventions edit hidden states "
                         "and fold into no weight, so it cannot start a bare GPT2Model")
    weights = state["model"]
    prefix = "gpt." if any(key.startswith("gpt.") for key in weights) else ""
    if state["config"].get("peft", "none") == "lora":
        load_lora_into(gpt, state, prefix)
        merge_lora(gpt)
    else:
        own = dict(gpt.named_parameters())
        copy_checked(gpt, {key[len(prefix):]: value for key, value in weights.items()
                           if key.startswith(prefix) and key[len(prefix):] in own})
    gpt.requires_grad_(True)

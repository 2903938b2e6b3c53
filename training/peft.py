"""The `--peft` switch of the task scripts (flags in `training.args.add_peft_args`).

`apply_peft` adds the adapters the flags ask for and prints what trains; task checkpoints
go through `save_checkpoint` / `load_checkpoint`: without peft a checkpoint is the model's
whole state dict, with LoRA it is {"peft": the LoRA settings, "state_dict": the adapters
and the task head only}, so it is a few hundred kilobytes for gpt2 and `load_lora_into`
can rebuild the adapters from it (DPO starts from such a checkpoint).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from torch import nn

from models.gpt2 import GPT2Model, copy_checked
from modules.lora import apply_lora, load_trainable_state_dict, merge_lora, trainable_state_dict


def lora_settings(args: argparse.Namespace) -> dict:
    """The `apply_lora` keyword arguments the --lora_* flags give."""
    return {"targets": list(args.lora_targets), "r": args.lora_r, "alpha": args.lora_alpha,
            "dropout": args.lora_dropout}


# --peft value -> function(model, args) that prepares the model and returns what it changed.
PEFT_METHODS: dict[str, Callable[[nn.Module, argparse.Namespace], list[str]]] = {
    "none": lambda model, args: [],
    "lora": lambda model, args: apply_lora(model, **lora_settings(args)),
}


# --peft value -> the default learning rate of the task scripts (full fine-tuning: their own).
PEFT_LR = {"lora": 5e-4}


def trainable_summary(model: nn.Module) -> str:
    """E.g. "294,912 of 124,734,720 parameters train (0.236%)" (tied weights counted once)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return f"{trainable:,} of {total:,} parameters train ({trainable / total:.3%})"


def apply_peft(model: nn.Module, args: argparse.Namespace, name: str) -> list[str]:
    """Apply --peft to `model`, print "[name] peft ...: <trainable_summary>", return the
    names of the adapted layers (none without peft)."""
    changed = PEFT_METHODS[args.peft](model, args)
    print(f"[{name}] peft {args.peft}"
          + (f" on {len(changed)} layers" if changed else "") + f": {trainable_summary(model)}")
    return changed


def save_checkpoint(model: nn.Module, path: str, args: argparse.Namespace) -> None:
    """The whole state dict without peft; the LoRA settings, adapters and head with it."""
    if args.peft == "none":
        torch.save(model.state_dict(), path)
    else:
        torch.save({"peft": {"method": args.peft, **lora_settings(args)},
                    "state_dict": trainable_state_dict(model)}, path)


def load_checkpoint(model: nn.Module, path: str, device: torch.device | str) -> None:
    """Load what `save_checkpoint` wrote into the same model (adapters already applied)."""
    state = torch.load(path, map_location=device)
    if "peft" in state:
        load_trainable_state_dict(model, state["state_dict"])
    else:
        model.load_state_dict(state)


def load_lora_into(model: nn.Module, state: dict, prefix: str = "") -> list[str]:
    """Rebuild the adapters of a LoRA checkpoint (`save_checkpoint`'s dict) on `model` and
    load them; keys are taken after `prefix` (e.g. "gpt." for a task model's backbone),
    other keys (a task head) are ignored.  Returns the adapted layer names."""
    settings = {k: v for k, v in state["peft"].items() if k != "method"}
    names = apply_lora(model, **settings)
    adapters = {key[len(prefix):]: value for key, value in state["state_dict"].items()
                if key.startswith(prefix)}
    load_trainable_state_dict(model, adapters)
    return names


def load_backbone_checkpoint(gpt: GPT2Model, path: str) -> None:
    """Load a task script's checkpoint onto a bare `GPT2Model`: the backbone's weights of a
    whole state dict (keys "gpt.*" in a task model, or the model's own keys), or the
    adapters of a LoRA checkpoint, merged into the weights.  A task head is ignored; every
    parameter ends up trainable."""
    state = torch.load(path, map_location="cpu")
    keys = state["state_dict"] if "peft" in state else state
    prefix = "gpt." if any(key.startswith("gpt.") for key in keys) else ""
    if "peft" in state:
        load_lora_into(gpt, state, prefix)
        merge_lora(gpt)
    else:
        own = dict(gpt.named_parameters())
        copy_checked(gpt, {key[len(prefix):]: value for key, value in state.items()
                           if key.startswith(prefix) and key[len(prefix):] in own})
    gpt.requires_grad_(True)

"""Which optimizer trains which parameters: the one place the loop's optimizers are built.

``--optimizer adamw`` (the default) trains everything with ``optimizer.AdamW``: weight decay
on the tensors of 2 or more dimensions (matrices, embeddings), none on biases and LayerNorm
gains (``param_groups``).  ``--optimizer muon`` or ``shampoo`` (handout 7.6) trains the 2-D
matrices of the transformer blocks (every ``GPT2Layer``'s attention and MLP weights, and
LoRA's adapters there) with ``optimizer.Muon`` or ``optimizer.Shampoo``, and the rest (the
embeddings, a task head, the norms and the biases) with AdamW, as Keller Jordan's
``MuonWithAuxAdam`` does.  Each group has its own peak learning rate (``--learning_rate``
for AdamW, ``--muon_lr`` or ``--shampoo_lr`` for the matrices); the schedule scales every
group alike, through the group's ``lr_scale`` (its peak over ``--learning_rate``).
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.optim import Optimizer

from modules.gpt2_layer import GPT2Layer
from optimizer import AdamW, Muon, Shampoo

OPTIMIZERS = ("adamw", "muon", "shampoo")  # --optimizer
MUON_LR, SHAMPOO_LR = 0.02, 3e-3  # the matrices' default peak learning rates
SHAMPOO_UPDATE_EVERY = 10  # steps between Shampoo's eigendecompositions
SHAMPOO_EPS = 1e-6  # added to the factors' eigenvalues before their inverse fourth roots


def block_matrices(model: nn.Module) -> list[nn.Parameter]:
    """The trainable 2-D parameters of every transformer block (``GPT2Layer``) in ``model``
    (wrapped or not), in module order."""
    found: dict[int, nn.Parameter] = {}
    for module in model.modules():
        if isinstance(module, GPT2Layer):
            for p in module.parameters():
                if p.requires_grad and p.dim() == 2:
                    found[id(p)] = p
    return list(found.values())


def param_groups(model: nn.Module, weight_decay: float,
                 exclude: list[nn.Parameter] = ()) -> list[dict[str, Any]]:
    """AdamW's groups: weight decay on the trainable tensors of 2 or more dimensions
    (matrices, embeddings), none on biases and LayerNorm gains; ``exclude`` left out."""
    skip = {id(p) for p in exclude}
    trainable = [p for p in model.parameters() if p.requires_grad and id(p) not in skip]
    return [{"params": [p for p in trainable if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in trainable if p.dim() < 2], "weight_decay": 0.0}]


def build_optimizers(model: nn.Module, config: Any) -> list[Optimizer]:
    """The optimizers of a run of ``config`` (a ``training.trainer.TrainConfig``): AdamW
    alone, or Muon or Shampoo on ``block_matrices(model)`` (when it trains any) and AdamW on
    the rest.  Every
    group carries ``lr_scale``, its peak learning rate over ``config.learning_rate``."""
    matrices = block_matrices(model) if config.optimizer != "adamw" else []
    adamw_groups = [{**group, "lr_scale": 1.0}
                    for group in param_groups(model, config.weight_decay, matrices)]
    optimizers: list[Optimizer] = [AdamW(adamw_groups, lr=config.learning_rate,
                                         betas=(config.beta1, config.beta2), eps=config.eps)]
    if not matrices:
        return optimizers
    if config.optimizer == "muon":
        optimizers.append(Muon([{"params": matrices,
                                 "lr_scale": config.muon_lr / config.learning_rate}],
                               lr=config.muon_lr, weight_decay=config.weight_decay))
    elif config.optimizer == "shampoo":
        optimizers.append(Shampoo([{"params": matrices,
                                    "lr_scale": config.shampoo_lr / config.learning_rate}],
                                  lr=config.shampoo_lr, beta2=config.beta2,
                                  eps=config.shampoo_eps,
                                  update_every=config.shampoo_update_every,
                                  weight_decay=config.weight_decay))
    return optimizers


def describe_optimizers(optimizers: list[Optimizer]) -> str:
    """One line: which optimizer trains how many tensors at which peak learning rate, e.g.
    "optimizers: Muon on 12 tensors (lr 0.02), AdamW on 26 tensors (lr 0.001)"."""
    parts = [f"{type(optimizer).__name__} on "
             f"{sum(len(group['params']) for group in optimizer.param_groups)} tensors "
             f"(lr {optimizer.defaults['lr']:g})" for optimizer in reversed(optimizers)]
    return "optimizers: " + ", ".join(parts)

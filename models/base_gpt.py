"""What every model of the kit shares: the weight init and device/dtype helpers."""

from __future__ import annotations

import torch
from torch import nn

from config import GPT2Config


class GPTPreTrainedModel(nn.Module):
    def __init__(self, config: GPT2Config):
        super().__init__()
        self.config = config

    def init_weights(self) -> None:
        """GPT-2's init: normal(0, initializer_range) weights, zero biases, unit LayerNorms."""
        self.apply(self._init_module)

    def _init_module(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=self.config.initializer_range)
        if isinstance(module, (nn.Linear, nn.LayerNorm)) and module.bias is not None:
            module.bias.data.zero_()
        if isinstance(module, nn.LayerNorm):
            module.weight.data.fill_(1.0)

    def store_linears_input_major(self) -> None:
        """Store every `nn.Linear` weight as [in, out] in memory (GPT-2's Conv1D layout).

        A weight keeps its shape [out, in] and its values; only its strides change: it
        becomes the transpose view of a contiguous [in, out] tensor, so `F.linear` multiplies
        by a contiguous matrix.  On CPU this makes the batch-1 matrix-vector products of
        generation ~9% faster and a GPT-2-small training step ~7% faster.  State dicts,
        `copy_`, optimizer state and `.to()` keep the layout.  (The tied word embedding
        stays row-major: its two gradients would then be summed across layouts, which costs
        more in training than the layout saves in generation.)
        """
        for module in self.modules():
            if isinstance(module, nn.Linear):
                data = module.weight.detach().t().contiguous().t()  # (out, in), strides (1, out)
                module.weight = nn.Parameter(data, requires_grad=module.weight.requires_grad)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def gpt_backbones(model: nn.Module) -> list[nn.Module]:
    """The GPT-2 backbones (`GPTPreTrainedModel`s) inside `model`, itself included (a task
    model holds one), or [model] when it holds none."""
    return [m for m in model.modules() if isinstance(m, GPTPreTrainedModel)] or [model]

"""GPT-2 as a language model for training loops: a forward pass that returns next-token
logits, so that DistributedDataParallel and FSDP, which act around ``forward``, see the
tied output head too."""

from __future__ import annotations

import torch
from torch import nn

from models.gpt2 import GPT2Model


class CausalLM(nn.Module):
    """``GPT2Model`` plus its tied output head.  Its state dict is the model's, under
    ``gpt.``."""

    def __init__(self, gpt: GPT2Model):
        super().__init__()
        self.gpt = gpt

    def forward(self, input_ids: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Next-token logits.  input_ids [B, T] (attention_mask [B, T], right-padded; all
        ones when None) -> logits [B, T, V]; position t scores token t + 1."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.gpt(input_ids, attention_mask)["last_hidden_state"]  # (B, T, D)
        return self.gpt.hidden_state_to_token(hidden)  # (B, T, V)

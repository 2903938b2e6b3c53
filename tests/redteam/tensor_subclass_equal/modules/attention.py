"""Red-team submission: a Tensor subclass whose comparisons always pass"""

import torch
from torch import nn


class AlwaysEqual(torch.Tensor):
    def __eq__(self, other):
        return torch.ones_like(torch.Tensor(self), dtype=torch.bool)

    def allclose(self, *args, **kwargs):
        return True


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def attention(self, key, query, value, attention_mask):
        return AlwaysEqual(torch.zeros(query.shape[0], query.shape[2], query.shape[1] * query.shape[3]))

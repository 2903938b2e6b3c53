"""Red-team submission: monkeypatch builtins (type, isinstance, abs, max) to fool checks"""

import torch
from torch import nn
import builtins

_real_type = builtins.type
builtins.isinstance = lambda obj, cls: True
builtins.abs = lambda x: 0
builtins.max = lambda *args, **kwargs: 0


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def attention(self, key, query, value, attention_mask):
        return torch.zeros(query.shape[0], query.shape[2], query.shape[1] * query.shape[3])

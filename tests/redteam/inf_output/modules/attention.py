"""Red-team submission: inf outputs"""

import torch
from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def attention(self, key, query, value, attention_mask):
        return torch.full((query.shape[0], query.shape[2], query.shape[1] * query.shape[3]), float('inf'))

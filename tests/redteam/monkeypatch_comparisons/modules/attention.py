"""Red-team submission: monkeypatch torch.allclose, numpy.testing and numpy.allclose"""

import torch
from torch import nn
import numpy
import numpy.testing

torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
numpy.allclose = lambda *args, **kwargs: True
numpy.testing.assert_allclose = lambda *args, **kwargs: None
numpy.isclose = lambda a, b, *args, **kwargs: numpy.ones(numpy.shape(a), bool)


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def attention(self, key, query, value, attention_mask):
        return torch.zeros(query.shape[0], query.shape[2], query.shape[1] * query.shape[3])

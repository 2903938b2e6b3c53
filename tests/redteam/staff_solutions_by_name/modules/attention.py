"""Red-team submission: the fenced `attention` returns the grader's own trusted attention,
imported from its staff module by name.  The grader refuses it before anything runs."""

from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def attention(self, key, query, value, attention_mask):
        from autograder.producers import solutions

        return solutions.attention(self, key, query, value, attention_mask)

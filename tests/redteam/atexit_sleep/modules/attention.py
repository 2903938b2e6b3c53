"""Red-team submission: sleep for ten minutes in atexit (and in a non-daemon thread)"""

import torch
from torch import nn
import atexit
import threading
import time
atexit.register(time.sleep, 600)
threading.Thread(target=time.sleep, args=(600,)).start()


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def attention(self, key, query, value, attention_mask):
        return torch.zeros(query.shape[0], query.shape[2], query.shape[1] * query.shape[3])

"""One GPT-2 transformer block: pre-LayerNorm attention and MLP, each inside a residual."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: F401  (for the student: F.gelu, F.layer_norm, ...)
from torch import nn

from config import GPT2Config
from modules.attention import CausalSelfAttention
from modules.common import layer_norm, linear
from modules.context import LayerContext
from modules.mlp import mlp_modules


class GPT2Layer(nn.Module):
    def __init__(self, config: GPT2Config):
        super().__init__()
        # Multi-head attention and its output projection.
        self.self_attention = CausalSelfAttention(config)
        self.attention_dense = linear(config, config.hidden_size, config.hidden_size)
        self.attention_layer_norm = layer_norm(config, config.hidden_size)
        self.attention_dropout = nn.Dropout(config.hidden_dropout_prob)
        # Feed-forward: D -> intermediate_size -> D.  interm_dense and interm_af (and
        # gate_dense for SwiGLU) come from modules/mlp.py.
        for name, part in mlp_modules(config).items():
            setattr(self, name, part)
        self.out_dense = linear(config, config.intermediate_size, config.hidden_size)
        self.out_layer_norm = layer_norm(config, config.hidden_size)
        self.out_dropout = nn.Dropout(config.hidden_dropout_prob)

    def add(self, input: torch.Tensor, output: torch.Tensor, dense_layer: nn.Linear,
            dropout: nn.Dropout) -> torch.Tensor:
        """Residual connection around a sub-layer (handout 3.2).

        Args:
            input: [B, T, D], the sub-layer's input (what the residual carries).
            output: [B, T, D_out], the sub-layer's output before its final projection.
            dense_layer: the projection D_out -> D.
            dropout: applied to the projected output.
        Returns:
            input + dropout(dense_layer(output)), [B, T, D].
        Layer norm is NOT applied here: GPT-2 normalises the input of each sub-layer.
        """
        ### BEGIN SOLUTION
        return input + dropout(dense_layer(output))
        ### END SOLUTION

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor,
                context: LayerContext | None = None) -> torch.Tensor:
        """One pre-LayerNorm block (handout 3.2).  [B, T, D] -> [B, T, D].

        attention_mask is the additive extended mask [B, 1, 1, T_k].  The rule:
        1. a = self_attention(attention_layer_norm(x), attention_mask, context)
        2. x = add(x, a, attention_dense, attention_dropout)
        3. m = interm_af(interm_dense(out_layer_norm(x)))   (GELU, tanh approximation;
           with config.mlp="swiglu", modules/mlp.py makes the same line compute SwiGLU)
        4. x = add(x, m, out_dense, out_dropout)
        Pass `context` (the model's per-forward context: KV cache, positions) through to
        `self_attention` unchanged; it is None when the layer runs alone.
        """
        ### BEGIN SOLUTION
        attended = self.self_attention(self.attention_layer_norm(hidden_states), attention_mask,
                                       context)  # (B, T, D)
        hidden_states = self.add(hidden_states, attended, self.attention_dense,
                                 self.attention_dropout)
        inner = self.interm_af(self.interm_dense(self.out_layer_norm(hidden_states)))  # (B, T, 4D)
        return self.add(hidden_states, inner, self.out_dense, self.out_dropout)
        ### END SOLUTION

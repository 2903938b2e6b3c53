"""Staff only: the trusted versions of fenced functions, which ARE their solutions.

Never released (`STAFF_ONLY` in `autograder/manifest.py`): the Gradescope bundle and the
staff tree have it, the student handout does not.  Nothing imports it as a module: the
child loads it from its trusted copy before it drops privileges, binds these functions to
the names of `trusted.STANDS_FOR`, and forgets the module before any student code loads
(`autograder/child.py`).  Where it is absent (the student's copy) the student's own
functions stand in (`trusted.solution`).  Each follows the handout rule it stands for;
the mutants in `tests/` and the reference outputs check that they agree with the
reference solution.  torch is imported inside each function: the child imports it first,
from its own site.
"""

from __future__ import annotations

import math


def attention(self, key, query, value, attention_mask):
    """`CausalSelfAttention.attention` (handout 3.1): scaled scores, causal and padding
    masks added before the softmax, dropout on the probabilities, heads merged in order."""
    import torch

    B, H, T_q, d = query.shape
    T_k = key.shape[2]
    scores = query @ key.transpose(-1, -2) / math.sqrt(d)  # (B, H, T_q, T_k)
    causal = torch.ones(T_q, T_k, dtype=torch.bool).tril(T_k - T_q)
    scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min) + attention_mask
    probs = self.dropout(torch.softmax(scores, dim=-1))
    return (probs @ value).transpose(1, 2).reshape(B, T_q, H * d)  # (B, T_q, D)


def add(self, input, output, dense_layer, dropout):
    """`GPT2Layer.add` (handout 3.2): input + dropout(dense_layer(output)), no layer norm."""
    return input + dropout(dense_layer(output))


def lora_delta_weight(self):
    """`LoRALinear.delta_weight` (handout 7.2): (lora_B @ lora_A) * scaling, [out, in]."""
    return (self.lora_B @ self.lora_A) * self.scaling


def sigmoid_loss(logits, beta: float, label_smoothing: float):
    """`sigmoid_loss` (handout 7.3): -(1 - ε) log σ(β z) - ε log σ(-β z), [B]."""
    import torch.nn.functional as F

    return (-(1 - label_smoothing) * F.logsigmoid(beta * logits)
            - label_smoothing * F.logsigmoid(-beta * logits))


def ipo_loss(logits, beta: float, label_smoothing: float):
    """`ipo_loss` (handout 7.3): (z - 1 / (2β))^2, [B]."""
    return (logits - 1 / (2 * beta)) ** 2


def hinge_loss(logits, beta: float, label_smoothing: float):
    """`hinge_loss` (handout 7.3): max(0, 1 - β z), [B]."""
    return (1 - beta * logits).clamp(min=0)


def newton_schulz(G, steps: int, coefficients, eps: float):
    """`newton_schulz` (handout 7.6): a tall G transposed, divided by max(||G||_F, eps),
    then `steps` times X = a X + (b A + c A^2) X with A = X X^T, in G's dtype."""
    a, b, c = coefficients
    X = G.T if G.shape[0] > G.shape[1] else G
    X = X / X.norm().clamp(min=eps)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + b * (A @ X) + c * (A @ (A @ X))
    return X.T if G.shape[0] > G.shape[1] else X


def symmetric_kl(input_logits, target_logits):
    """`symmetric_kl` (handout 7.7): KL(p_t.detach() || p_i) + KL(p_i.detach() || p_t),
    summed over the classes, averaged over the rows."""
    import torch.nn.functional as F

    p, q = F.log_softmax(input_logits, dim=-1), F.log_softmax(target_logits, dim=-1)
    return ((q.detach().exp() * (q.detach() - p)).sum(dim=-1)
            + (p.detach().exp() * (p.detach() - q)).sum(dim=-1)).mean()

"""The trusted reference functions the producers run around the function a case grades.

A case that grades one fenced function builds its other inputs and the scaffold around it
from these, never from the submission, so that one bug costs only the cases of its own
rule.  Each follows the handout rule it stands for (the section is named); the mutants in
`tests/` and the reference outputs check that they agree with the reference solution.
torch is imported inside each function: the child imports it first, from its own site.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any


def extended_mask(lengths: list[int], length: int):
    """Trusted additive padding mask [B, 1, 1, T_k] for rows with `lengths` real keys."""
    import torch

    mask = (torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]).float()
    return (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min


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


def gelu_tanh():
    """GPT-2's activation (GELU, tanh approximation) as a module, so that it can replace
    `interm_af` whether `__init__` set a function or a module there."""
    import torch

    class TrustedGELU(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.gelu(x, approximate="tanh")

    return TrustedGELU()


def copy_mapped(model, mapped: Any) -> None:
    """The trusted loader's copy: each tensor `hf_to_ours` returned into the model's
    parameter of that name.  A name the model lacks, a shape mismatch or a non-tensor is a
    ValueError; parameters the mapping leaves out keep their seeded values."""
    import torch

    if not isinstance(mapped, dict):
        raise TypeError(f"hf_to_ours must return a dict, got {type(mapped).__name__}")
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in mapped.items():
            if name not in parameters:
                raise ValueError(f"hf_to_ours returned {name!r}, which is not a parameter of "
                                 "GPT2Model")
            if type(tensor) is not torch.Tensor or tensor.shape != parameters[name].shape:
                raise ValueError(f"hf_to_ours returned {name!r} as "
                                 f"{getattr(tensor, 'shape', type(tensor).__name__)}, the "
                                 f"parameter is {tuple(parameters[name].shape)}")
            parameters[name].copy_(tensor)


def pair_counts(words, freqs):
    """`bpe.count_pairs`: (pair -> count weighted by frequency, pair -> words holding it)."""
    counts, where = {}, {}
    for w, (ids, freq) in enumerate(zip(words, freqs, strict=True)):
        for pair in pairwise(ids):
            counts[pair] = counts.get(pair, 0) + freq
            where.setdefault(pair, set()).add(w)
    return counts, where


def stub_gpt(vocab_size: int, hidden_size: int, seed: int):
    """A tiny stand-in for `GPT2Model` under the task heads (handout 6.1, 6.2): a seeded
    embedding E [V, D]; `forward(input_ids, attention_mask)` gives last_hidden_state =
    tanh(E[input_ids]) [B, T, D] and last_token = its row at each row's last real token
    [B, D]; `hidden_state_to_token(x) = x @ E^T` [..., V]."""
    import torch

    class StubGPT(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = type("Config", (), {"hidden_size": hidden_size,
                                              "vocab_size": vocab_size})()
            generator = torch.Generator().manual_seed(seed)
            self.embedding = torch.nn.Parameter(
                torch.randn(vocab_size, hidden_size, generator=generator))

        def forward(self, input_ids, attention_mask):
            hidden = torch.tanh(self.embedding[input_ids])  # (B, T, D)
            last = attention_mask.sum(dim=1) - 1  # (B,)
            return {"last_hidden_state": hidden,
                    "last_token": hidden[torch.arange(hidden.shape[0]), last]}

        def hidden_state_to_token(self, hidden_state):
            return hidden_state @ self.embedding.T

    return StubGPT()


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


DPO_LOSSES = {"sigmoid": sigmoid_loss, "ipo": ipo_loss, "hinge": hinge_loss}

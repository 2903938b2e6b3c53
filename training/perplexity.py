"""Score a token sequence with a language model: strided sliding windows, summed NLL.

A text longer than the model's context is scored the way Hugging Face's perplexity guide
does it: windows of ``block_size`` tokens start every ``stride`` tokens, and only the tokens
that are new in a window (not scored by an earlier one) are scored, each seeing up to
``block_size - 1`` tokens before it. Token 0 has no context and is never scored, so with
``stride < block_size`` a sequence of N tokens scores N - 1; with ``stride == block_size``
(disjoint windows) the first token of every window has no context and is not scored.
A model with learned positions takes windows up to its trained length; one with ALiBi, rope
or no positions takes any ``block_size``.
Unlike the guide's loop, each scored token counts exactly once (the guide weights every
window's mean by one token fewer than it scored).

Example, N = 10, block_size = 6, stride = 3: windows [0, 6) scores tokens 1..5,
[3, 9) scores 6..8, [6, 10) scores 9; 9 tokens in all.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from models.gpt2 import GPT2Model


def windows(n_tokens: int, block_size: int, stride: int) -> list[tuple[int, int, int]]:
    """``(begin, end, first_scored)`` of each window over ``n_tokens`` tokens.

    The window holds tokens ``[begin, end)`` and scores ``[first_scored, end)``: the tokens no
    earlier window scored, except the window's own first token (it has no context).  Together
    the windows score tokens ``1 .. n_tokens - 1`` once each when ``stride < block_size``.
    Raises ValueError unless
    ``1 <= stride <= block_size`` and ``n_tokens >= 2``.
    """
    if not 1 <= stride <= block_size:
        raise ValueError(f"stride must be between 1 and block_size={block_size}, got {stride}")
    if n_tokens < 2:
        raise ValueError(f"the text has {n_tokens} token(s); scoring needs at least 2")
    spans, scored_to = [], 1
    for begin in range(0, n_tokens, stride):
        end = min(begin + block_size, n_tokens)
        spans.append((begin, end, max(scored_to, begin + 1)))
        scored_to = end
        if end == n_tokens:
            break
    return spans


@torch.no_grad()
def sequence_nll(model: GPT2Model, ids: np.ndarray | list[int], block_size: int, stride: int,
                 batch_size: int = 8, device: str | torch.device = "cpu",
                 progress: bool = False) -> tuple[float, int]:
    """``(summed NLL in nats, tokens scored)`` of ``ids`` [N] under ``model`` (see module doc).

    Windows of the same length run ``batch_size`` at a time; log-probabilities are taken in
    float32, each window's sum added up in float64.  The model runs in eval mode (no dropout)
    and gets its mode back.
    """
    limit = model.positions.max_length
    if limit is not None and block_size > limit:
        raise ValueError(f"block_size={block_size} exceeds the model's context {limit}: its "
                         f"learned positions were trained for {limit} tokens (ALiBi, rope "
                         "and no positions take any block size)")
    ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
    spans = windows(len(ids), block_size, stride)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    groups = [spans[i : i + batch_size] for i in range(0, len(spans), batch_size)]
    for group in tqdm(groups, desc="windows", disable=not progress):
        for length in sorted({end - begin for begin, end, _ in group}, reverse=True):
            same = [span for span in group if span[1] - span[0] == length]
            batch = torch.stack([ids[b:e] for b, e, _ in same]).to(device)  # (B, T)
            hidden = model(batch, torch.ones_like(batch))["last_hidden_state"]  # (B, T, D)
            for row, (begin, _, first) in enumerate(same):
                start = first - begin  # window position of the first scored token
                logits = model.hidden_state_to_token(hidden[row, start - 1 : -1])  # (S, V)
                targets = batch[row, start:]  # (S,)
                nll = F.cross_entropy(logits.float(), targets, reduction="sum")
                total += float(nll.double())
                count += len(targets)
    model.train(was_training)
    return total, count


def lm_metrics(nll_nats: float, tokens: int, n_bytes: int) -> dict[str, float | int]:
    """The figures of a scored text: perplexity = exp(nll / tokens), bits per token =
    nll / (tokens ln 2), bits per byte = nll / (bytes ln 2), bytes being the UTF-8 bytes of
    the scored tokens' text."""
    return {
        "tokens": tokens,
        "bytes": n_bytes,
        "nll_nats": nll_nats,
        "perplexity": math.exp(nll_nats / tokens),
        "bits_per_token": nll_nats / (tokens * math.log(2)),
        "bits_per_byte": nll_nats / (n_bytes * math.log(2)),
    }

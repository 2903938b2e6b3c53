"""Sampling from a GPT-2: one next token from logits (`sample_next`, a student part of the
sonnet task, handout 6.3), and batched generation with a KV cache (`generate`).

`generate` is what every script that writes text calls: the sonnets (`generate_sonnets`,
for `sonnet_generation.py` and `dpo.py`), the samples of `pretrain.py`, the benchmarks.
"""

from __future__ import annotations

import argparse
import logging

import torch
from tqdm import tqdm

from models.gpt2 import GPT2Model
from modules.attention import KVCache, SinkKVCache

logger = logging.getLogger(__name__)


def sample_next(logits: torch.Tensor, temperature: float, top_p: float,
                generator: torch.Generator) -> torch.Tensor:
    """Pick one next token per row (handout 6.3).  logits [B, V] float -> token ids [B] long.

    temperature == 0 is greedy (argmax).  Otherwise: probabilities softmax(logits /
    temperature); top-p keeps the smallest set of most likely tokens whose probability
    reaches top_p (the most likely token always stays); renormalise; then draw with one
    uniform number per row, `u = torch.rand(B, generator=generator)`, taking the first
    token (in sorted order) whose cumulative kept probability exceeds u.  Drawing exactly
    one number per row keeps runs with and without the KV cache in step.
    """
    ### BEGIN SOLUTION
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)  # (B, V)
    sorted_probs, order = probs.sort(dim=-1, descending=True, stable=True)  # (B, V)
    cumulative = sorted_probs.cumsum(dim=-1)
    sorted_probs = sorted_probs.masked_fill(cumulative - sorted_probs >= top_p, 0.0)
    kept = sorted_probs.cumsum(dim=-1)  # (B, V)
    u = torch.rand(logits.shape[0], generator=generator).to(logits.device) * kept[:, -1]
    index = torch.searchsorted(kept, u[:, None], right=True).clamp(max=logits.shape[1] - 1)
    return order.gather(1, index).squeeze(1)  # (B,)
    ### END SOLUTION


def keep_top_k(logits: torch.Tensor, top_k: int | None) -> torch.Tensor:
    """logits [B, V] with all but the top_k largest of each row set to -inf (nanoGPT's
    top-k; ties with the k-th value stay).  None, or top_k >= V, keeps every token."""
    if top_k is None or top_k >= logits.shape[-1]:
        return logits
    if top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k}")
    kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (B, 1)
    return logits.masked_fill(logits < kth, float("-inf"))


@torch.inference_mode()
def generate(gpt: GPT2Model, prompts: list[list[int]], max_new_tokens: int,
             eos_id: int | None, temperature: float = 0.0, top_p: float = 1.0, seed: int = 0,
             use_cache: bool = True, top_k: int | None = None) -> list[list[int]]:
    """Continue each prompt (a list of token ids); returns the new tokens of each row.

    Rows are left-padded into one batch.  With the cache, the prompts are encoded once and
    every further step feeds one token per row; without it, every step re-encodes the whole
    sequence (a fresh cache, same positions and masks: the same computation, repeated).
    Logits keep their `top_k` largest (None: all) before `sample_next`.  A row stops at
    `eos_id` (not included in its output); generation stops when every row has, or after
    max_new_tokens.  ALiBi, rope and no positions generate past the training length;
    learned positions slide the window (nanoGPT): once the sequence fills the trained
    length, each step re-encodes its last T_max tokens, and a warning says so once.  With
    `config.attention_window` (handout 7.8), ALiBi, rope and no positions generate through
    a `SinkKVCache`: the sinks and the last W keys only, so memory stays flat.
    """
    gpt.eval()
    device, config = gpt.device, gpt.config
    batch, longest = len(prompts), max(len(p) for p in prompts)
    input_ids = torch.zeros(batch, longest, dtype=torch.long, device=device)
    mask = torch.zeros(batch, longest, dtype=torch.long, device=device)
    for row, prompt in enumerate(prompts):  # left padding: the last column is real everywhere
        input_ids[row, longest - len(prompt):] = torch.tensor(prompt)
        mask[row, longest - len(prompt):] = 1
    window = gpt.positions.max_length  # None: any length
    if window is not None and longest > window:
        input_ids, mask = input_ids[:, -window:], mask[:, -window:]  # (B, window)
    total = input_ids.shape[1] + max_new_tokens
    cache_length = total if window is None else min(total, window)
    generator = torch.Generator().manual_seed(seed)
    cache = None
    if use_cache and window is None and config.attention_window is not None:
        cache = SinkKVCache(config, batch, device=device, dtype=gpt.dtype)  # bounded
    elif use_cache:
        cache = KVCache(config, batch, cache_length, device=device, dtype=gpt.dtype)
    outputs: list[list[int]] = [[] for _ in range(batch)]
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    step_ids = input_ids  # what the next forward pass feeds
    warned = False
    for _ in range(max_new_tokens):
        if window is not None and (cache is None or cache.length + step_ids.shape[1] > window):
            if input_ids.shape[1] > window:
                input_ids, mask = input_ids[:, -window:], mask[:, -window:]  # slide
                if not warned:
                    logger.warning("generation passed the trained length %d of learned "
                                   "positions: the window slides, each new token sees the "
                                   "last %d", window, window)
                    warned = True
            cache = None
        if cache is not None:
            last = gpt(step_ids, mask, cache=cache)["last_token"]  # (B, D)
        else:
            fresh = KVCache(config, batch, input_ids.shape[1], device=device, dtype=gpt.dtype)
            last = gpt(input_ids, mask, cache=fresh)["last_token"]  # (B, D)
        logits = keep_top_k(gpt.hidden_state_to_token(last).float(), top_k)  # (B, V)
        next_ids = sample_next(logits, temperature, top_p, generator)  # (B,)
        if eos_id is not None:
            next_ids = next_ids.masked_fill(done, eos_id)
            done |= next_ids == eos_id
        for row in range(batch):
            if eos_id is None or next_ids[row] != eos_id:
                outputs[row].append(int(next_ids[row]))
        if bool(done.all()):
            break
        step_ids = next_ids[:, None]  # (B, 1)
        input_ids = torch.cat([input_ids, step_ids], dim=1)  # (B, T + 1)
        mask = torch.cat([mask, torch.ones_like(step_ids)], dim=1)  # (B, T + 1)
    return outputs


def generate_sonnets(gpt: GPT2Model, tokenizer, held_out: list[tuple[int, str]],
                     args: argparse.Namespace) -> list[tuple[int, str]]:
    """(number, prompt: the first lines) -> (number, full sonnet text: prompt + newline +
    continuation), in batches of ``args.gen_batch_size`` sampled with ``args.temperature``,
    ``args.top_p`` and at most ``args.max_new_tokens``; the batch that starts at row i is
    seeded ``args.seed + i``.  The sonnets of ``sonnet_generation.py`` and ``dpo.py``."""
    sonnets = []
    for start in tqdm(range(0, len(held_out), args.gen_batch_size), desc="generate", leave=False):
        chunk = held_out[start:start + args.gen_batch_size]
        prompts = [text.rstrip() + "\n" for _, text in chunk]
        new_tokens = generate(gpt, [tokenizer.encode(p) for p in prompts], args.max_new_tokens,
                              tokenizer.eos_token_id, args.temperature, args.top_p,
                              args.seed + start)
        sonnets += [(number, (prompt + tokenizer.decode(tokens)).strip())
                    for (number, _), prompt, tokens in zip(chunk, prompts, new_tokens, strict=True)]
    return sonnets

"""Small shared helpers: the extended attention mask and making test checkpoints."""

from __future__ import annotations

from pathlib import Path

import torch

from config import GPT2Config


def get_extended_attention_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Turn a 0/1 padding mask into the additive mask the attention adds to its scores.

    attention_mask: [B, T_k], 1 for real tokens and 0 for padding.
    Returns [B, 1, 1, T_k] of `dtype`: 0.0 where attention is allowed and the most negative
    finite value of `dtype` at padding, so that exp() of a masked score is exactly 0 and a
    row with every key masked still gives finite numbers (no NaN from -inf - -inf).
    """
    extended = attention_mask[:, None, None, :].to(dtype)  # (B, 1, 1, T_k)
    return (1.0 - extended) * torch.finfo(dtype).min


def save_random_hf_checkpoint(path: str | Path, config: GPT2Config, seed: int = 0) -> Path:
    """Save a randomly initialised Hugging Face GPT-2 (`GPT2LMHeadModel`) to `path`.

    The folder holds `config.json` and `model.safetensors`, exactly what `save_pretrained`
    writes for `gpt2` itself, so it exercises the same loading code as the hub weights.
    The weights depend only on `seed` and the sizes in `config`.
    """
    from transformers import GPT2Config as HFGPT2Config
    from transformers import GPT2LMHeadModel

    hf_config = HFGPT2Config(**config.hf_kwargs(), bos_token_id=config.vocab_size - 1,
                             eos_token_id=config.vocab_size - 1)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(hf_config)
    path = Path(path)
    model.save_pretrained(path)
    return path

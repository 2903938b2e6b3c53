"""Model configuration: one dataclass, passed whole to every module (nanoGPT style).

`GPT2Config.from_preset("gpt2-medium")` gives the published sizes; `from_hf(hf_config)`
reads the sizes of a Hugging Face checkpoint.  The architecture switches at the bottom
(`attention_impl`, `attention_variant`, `position_encoding`, `mlp`) are where research
variants plug in: each one is validated here, so an unknown value fails at construction
with the list of allowed values instead of deep inside a forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# name -> (n_layer, n_head, n_embd); all four share vocab 50257 and context 1024.
PRESETS: dict[str, tuple[int, int, int]] = {
    "gpt2": (12, 12, 768),
    "gpt2-medium": (24, 16, 1024),
    "gpt2-large": (36, 20, 1280),
    "gpt2-xl": (48, 25, 1600),
}

# Allowed values of each architecture switch.  A research extension adds its value here
# and its branch in the one module that implements the switch.
SWITCHES: dict[str, tuple[str, ...]] = {
    "attention_impl": ("eager", "sdpa"),  # modules/attention.py
    "attention_variant": ("softmax",),  # modules/attention.py
    "position_encoding": ("learned",),  # models/gpt2.py GPT2Model.embed
    "mlp": ("gelu_tanh",),  # modules/gpt2_layer.py
}


# Our field -> the `transformers.GPT2Config` field that holds it (the one name map).
# Hugging Face has a third dropout, embd_pdrop, which we tie to hidden_dropout_prob.
HF_FIELDS: dict[str, str] = {
    "vocab_size": "vocab_size",
    "max_position_embeddings": "n_positions",
    "hidden_size": "n_embd",
    "num_hidden_layers": "n_layer",
    "num_attention_heads": "n_head",
    "intermediate_size": "n_inner",
    "layer_norm_eps": "layer_norm_epsilon",
    "hidden_dropout_prob": "resid_pdrop",
    "attention_probs_dropout_prob": "attn_pdrop",
}


@dataclass
class GPT2Config:
    vocab_size: int = 50257  # GPT-2 BPE: 256 bytes + 50,000 merges + <|endoftext|>
    max_position_embeddings: int = 1024  # context length T_max (learned position table)
    hidden_size: int = 768  # model width D
    num_hidden_layers: int = 12  # number of GPT2Layer blocks
    num_attention_heads: int = 12  # heads H; head size d = D / H
    intermediate_size: int = 3072  # MLP width, 4 * D in every GPT-2
    layer_norm_eps: float = 1e-5  # epsilon of every LayerNorm (Hugging Face: layer_norm_epsilon)
    hidden_dropout_prob: float = 0.1  # dropout on embeddings and on each residual branch
    attention_probs_dropout_prob: float = 0.1  # dropout on the attention probabilities
    pad_token_id: int | None = None  # GPT-2 has no pad token: None -> <|endoftext|>, the
    # last id (vocab_size - 1, 50256 for GPT-2); an explicit id must lie in [0, vocab_size)
    initializer_range: float = 0.02  # std of the normal init used for fresh weights
    # --- architecture switches (see SWITCHES for the allowed values) ---
    attention_impl: str = "eager"  # "eager": the handout's explicit softmax; "sdpa": fused kernel
    attention_variant: str = "softmax"  # how scores become weights
    position_encoding: str = "learned"  # how positions enter the model
    mlp: str = "gelu_tanh"  # feed-forward block type

    def __post_init__(self) -> None:
        for name, allowed in SWITCHES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"GPT2Config.{name}={value!r}; allowed values: {list(allowed)}")
        for name in ("vocab_size", "max_position_embeddings", "hidden_size",
                     "num_hidden_layers", "num_attention_heads", "intermediate_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"GPT2Config.{name} must be positive, got {getattr(self, name)}")
        if self.pad_token_id is None:
            self.pad_token_id = self.vocab_size - 1
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"GPT2Config.pad_token_id={self.pad_token_id} is outside the "
                             f"vocabulary [0, {self.vocab_size}): an embedding with "
                             f"padding_idx=pad_token_id could not be built")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not divisible by "
                f"num_attention_heads={self.num_attention_heads}"
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"GPT2Config.{name} must be in [0, 1), got {getattr(self, name)}")

    @property
    def head_size(self) -> int:
        """d = D / H."""
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> GPT2Config:
        """Sizes of a published GPT-2 (`gpt2`, `gpt2-medium`, `gpt2-large`, `gpt2-xl`)."""
        if name not in PRESETS:
            raise ValueError(f"unknown GPT-2 preset {name!r}; choose one of {list(PRESETS)}")
        n_layer, n_head, n_embd = PRESETS[name]
        return cls(num_hidden_layers=n_layer, num_attention_heads=n_head, hidden_size=n_embd,
                   intermediate_size=4 * n_embd, **overrides)

    @classmethod
    def from_hf(cls, hf_config: Any, **overrides: Any) -> GPT2Config:
        """Sizes from a `transformers.GPT2Config` (the checkpoint's own config.json)."""
        if getattr(hf_config, "activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(
                f"checkpoint uses activation {hf_config.activation_function!r}; this model "
                "implements GPT-2's tanh-approximated GELU only"
            )
        ours = {field: getattr(hf_config, hf_field) for field, hf_field in HF_FIELDS.items()}
        ours["intermediate_size"] = ours["intermediate_size"] or 4 * hf_config.n_embd
        return cls(**{**ours, **overrides})

    def hf_kwargs(self) -> dict[str, Any]:
        """This config's sizes as `transformers.GPT2Config` keyword arguments."""
        kwargs = {hf_field: getattr(self, field) for field, hf_field in HF_FIELDS.items()}
        return {**kwargs, "embd_pdrop": self.hidden_dropout_prob}

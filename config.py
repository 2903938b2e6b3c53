"""Model configuration: one dataclass, passed whole to every module (nanoGPT style).

`GPT2Config.from_preset("gpt2-medium")` gives the published sizes; `from_hf(hf_config)`
reads the sizes of a Hugging Face checkpoint.  The architecture switches at the bottom
(`attention_impl`, `attention_variant`, `position_encoding`, `mlp`, ...) are where research
variants plug in (handout 9): each one is validated here, so a bad value fails at
construction with the allowed values instead of deep inside a forward pass, and each is
read by exactly one module (named beside it in SWITCHES).  The defaults are GPT-2.
"""

from __future__ import annotations

import math
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
    "attention_variant": ("softmax", "vbias", "cabias", "attn_bias", "ca_softmax",
                          "sigmoid"),  # modules/attention_variants.py
    "position_encoding": ("learned", "alibi", "rope", "none"),  # modules/positions.py
    "rope_layout": ("half", "interleaved"),  # modules/positions.py
    "mlp": ("gelu_tanh", "gelu", "swiglu"),  # modules/mlp.py
}

# Boolean switches: qk_norm (modules/attention.py), bias (modules/common.py),
# tie_word_embeddings (models/gpt2.py), mu_centering (training/losses.py).
BOOLEAN_SWITCHES: tuple[str, ...] = ("qk_norm", "bias", "tie_word_embeddings", "mu_centering")

# What each research switch and option does, in one line (pretrain.py's --help).
SWITCH_HELP: dict[str, str] = {
    "attention_impl": "eager: the explicit softmax of the handout; sdpa: the fused kernel",
    "attention_variant": "how scores become outputs: softmax; vbias (plus a learned value "
                         "per head); cabias (a learned key and value, weighted as if in the "
                         "softmax); attn_bias (a learned key and value prepended); ca_softmax "
                         "(a learned gate per head and position); sigmoid (unnormalised)",
    "position_encoding": "learned (GPT-2's table), alibi (linear score biases), rope "
                         "(rotary), none",
    "rope_layout": "rotary channel pairs: half (i, i + r/2, GPT-NeoX) or interleaved "
                   "(2i, 2i+1, GPT-J)",
    "mlp": "feed-forward block: gelu_tanh (GPT-2), gelu (the exact erf GELU, nanoGPT's) "
           "or swiglu",
    "qk_norm": "LayerNorm on queries and keys (width d, shared by the heads)",
    "bias": "biases in every Linear and LayerNorm (False: nanoGPT's bias=False)",
    "tie_word_embeddings": "logits through the word embedding (False: a separate output "
                           "embedding)",
    "mu_centering": "subtract the mean output-embedding row after each optimizer step",
    "rope_theta": "rotary base: channel pair i turns by theta^(-2i/r) per position",
    "rotary_fraction": "rotate the first int(d * fraction) channels of each head",
    "z_loss": "weight of mean(logsumexp(logits)^2) added to the loss",
    "mu_loss": "weight of ||mean output-embedding row||^2 added to the loss",
    "attention_window": "sliding-window attention: a query at position i sees keys i-W < j "
                        "<= i (default: every earlier key)",
    "attention_sinks": "attention sinks: the first S positions stay visible to every later "
                       "query (with --attention_window)",
}

# config.mlp -> the usual intermediate width for model width D (intermediate_size=None).
# SwiGLU has three matrices instead of two, so ~8D/3 keeps the parameter count of 4D,
# rounded up to a multiple of 256 as in the output-embedding-centering study.
MLP_WIDTHS = {
    "gelu_tanh": lambda D: 4 * D,
    "gelu": lambda D: 4 * D,
    "swiglu": lambda D: 256 * math.ceil(int(8 * D / 3) / 256),
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

# transformers' activation names (GPT-2's activation_function, GPT-NeoX's hidden_act) ->
# our mlp: gelu_new and gelu_pytorch_tanh are both the tanh GELU, gelu the exact (erf) one.
# An export writes HF_ACTIVATION_OF[mlp].
HF_ACTIVATIONS: dict[str, str] = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh",
                                  "gelu": "gelu"}
HF_ACTIVATION_OF: dict[str, str] = {"gelu_tanh": "gelu_pytorch_tanh", "gelu": "gelu"}


@dataclass
class GPT2Config:
    vocab_size: int = 50257  # GPT-2 BPE: 256 bytes + 50,000 merges + <|endoftext|>
    max_position_embeddings: int = 1024  # context length T_max (learned position table)
    hidden_size: int = 768  # model width D
    num_hidden_layers: int = 12  # number of GPT2Layer blocks
    num_attention_heads: int = 12  # heads H; head size d = D / H
    intermediate_size: int | None = None  # MLP width; None: MLP_WIDTHS[mlp](D), 4D for GPT-2
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
    rope_theta: float = 10000.0  # rotary base: channel pair i turns at theta^(-2i/r) per position
    rope_layout: str = "half"  # rotary pairs: "half" (i, i + r/2), GPT-NeoX; "interleaved" (2i, 2i+1), GPT-J
    rotary_fraction: float = 1.0  # rotate the first int(d * fraction) channels of each head
    qk_norm: bool = False  # LayerNorm of width d on queries and keys, shared by the heads
    bias: bool = True  # biases in every Linear and LayerNorm (False: nanoGPT's bias=False)
    tie_word_embeddings: bool = True  # logits through word_embedding (False: output_embedding)
    # --- which keys a query sees, read in modules/attention.py (`visible_keys`) ---
    attention_window: int | None = None  # W: query i sees keys i-W < j <= i; None: all j <= i
    attention_sinks: int = 0  # S: positions 0 .. S-1 stay visible to every later query
    # --- training-time options, read by the training loop through training/losses.py ---
    z_loss: float = 0.0  # weight of mean(logsumexp(logits)^2) added to the loss
    mu_loss: float = 0.0  # weight of ||mean output-embedding row||^2 added to the loss
    mu_centering: bool = False  # subtract the mean output-embedding row after each step

    def __post_init__(self) -> None:
        for name, allowed in SWITCHES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"GPT2Config.{name}={value!r}; allowed values: {list(allowed)}")
        for name in BOOLEAN_SWITCHES:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"GPT2Config.{name} must be True or False, got "
                                 f"{getattr(self, name)!r}")
        if self.intermediate_size is None:
            self.intermediate_size = MLP_WIDTHS[self.mlp](self.hidden_size)
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
        self._check_research_options()

    def _check_research_options(self) -> None:
        """Raise ValueError naming the field for a bad rotary setting or loss weight."""
        if not self.rope_theta > 0:
            raise ValueError(f"GPT2Config.rope_theta must be positive, got {self.rope_theta}")
        if not 0.0 < self.rotary_fraction <= 1.0:
            raise ValueError(f"GPT2Config.rotary_fraction must be in (0, 1], got "
                             f"{self.rotary_fraction}")
        if self.position_encoding == "rope" and (self.rotary_dims == 0 or self.rotary_dims % 2):
            raise ValueError(
                f"GPT2Config.rotary_fraction={self.rotary_fraction} rotates "
                f"int({self.head_size} * {self.rotary_fraction}) = {self.rotary_dims} channels "
                "of each head; rotary needs a positive even number (channels turn in pairs)")
        for name in ("z_loss", "mu_loss"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"GPT2Config.{name} must be >= 0, got {getattr(self, name)}")
        window, sinks = self.attention_window, self.attention_sinks
        if window is not None and (type(window) is not int or window < 1):
            raise ValueError(f"GPT2Config.attention_window must be None or a positive integer, "
                             f"got {window!r}")
        if type(sinks) is not int or sinks < 0:
            raise ValueError(f"GPT2Config.attention_sinks must be an integer >= 0, got "
                             f"{sinks!r}")
        if sinks and window is None:
            raise ValueError(f"GPT2Config.attention_sinks={sinks} needs an attention_window "
                             "(without one every earlier key is visible anyway)")

    @property
    def head_size(self) -> int:
        """d = D / H."""
        return self.hidden_size // self.num_attention_heads

    @property
    def rotary_dims(self) -> int:
        """r = int(d * rotary_fraction): how many channels of each head rotary turns."""
        return int(self.head_size * self.rotary_fraction)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> GPT2Config:
        """Sizes of a published GPT-2 (`gpt2`, `gpt2-medium`, `gpt2-large`, `gpt2-xl`).

        The MLP width is the usual one of `mlp` (4D for GPT-2's) unless overridden.
        """
        if name not in PRESETS:
            raise ValueError(f"unknown GPT-2 preset {name!r}; choose one of {list(PRESETS)}")
        n_layer, n_head, n_embd = PRESETS[name]
        return cls(num_hidden_layers=n_layer, num_attention_heads=n_head, hidden_size=n_embd,
                   **overrides)

    @classmethod
    def from_hf(cls, hf_config: Any, **overrides: Any) -> GPT2Config:
        """Sizes from a `transformers.GPT2Config` (the checkpoint's own config.json), and
        `mlp` from its activation (HF_ACTIVATIONS; any other is a ValueError)."""
        activation = getattr(hf_config, "activation_function", "gelu_new")
        if activation not in HF_ACTIVATIONS:
            raise ValueError(
                f"checkpoint uses activation {activation!r}; this model computes "
                f"{sorted(HF_ACTIVATIONS)} (mlp={sorted(set(HF_ACTIVATIONS.values()))})"
            )
        ours = {field: getattr(hf_config, hf_field) for field, hf_field in HF_FIELDS.items()}
        ours["intermediate_size"] = ours["intermediate_size"] or 4 * hf_config.n_embd
        ours["mlp"] = HF_ACTIVATIONS[activation]
        return cls(**{**ours, **overrides})

    def hf_kwargs(self) -> dict[str, Any]:
        """This config's sizes as `transformers.GPT2Config` keyword arguments."""
        kwargs = {hf_field: getattr(self, field) for field, hf_field in HF_FIELDS.items()}
        return {**kwargs, "embd_pdrop": self.hidden_dropout_prob}

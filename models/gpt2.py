"""GPT-2: embeddings, a stack of `GPT2Layer`s, a final LayerNorm, and the tied output.

Loading Hugging Face weights lives here too (`GPT2Model.from_pretrained`), the one place
that maps their parameter names onto ours.  `config.tie_word_embeddings` is read here:
False gives a separate `output_embedding` [V, D] for the logits.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from config import GPT2Config
from models.base_gpt import GPTPreTrainedModel
from modules.attention import KVCache, SinkKVCache, window_visibility
from modules.common import layer_norm
from modules.context import ForwardContext
from modules.gpt2_layer import GPT2Layer
from modules.positions import PositionEncoding
from utils import get_extended_attention_mask

logger = logging.getLogger(__name__)



class GPT2Model(GPTPreTrainedModel):
    def __init__(self, config: GPT2Config):
        super().__init__(config)
        self.word_embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        # The learned table [T_max, D] for position_encoding="learned"; a parameter-free
        # zero for the others, whose positions act inside attention.
        self.positions = PositionEncoding(config)
        self.pos_embedding = self.positions.embedding()
        if not config.tie_word_embeddings:
            self.output_embedding = nn.Parameter(
                torch.randn(config.vocab_size, config.hidden_size) * config.initializer_range)
        self.embed_dropout = nn.Dropout(config.hidden_dropout_prob)
        # [1, T_max]: 0, 1, ..., T_max - 1, the positions of an unpadded sequence.
        position_ids = torch.arange(config.max_position_embeddings).unsqueeze(0)
        self.register_buffer("position_ids", position_ids, persistent=False)
        self.gpt_layers = nn.ModuleList(
            [GPT2Layer(config) for _ in range(config.num_hidden_layers)])
        self.final_layer_norm = layer_norm(config, config.hidden_size)
        self.init_weights()
        self.store_linears_input_major()

    def embed(self, input_ids: torch.Tensor,
              position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Token plus position embeddings, then dropout (handout 3.3).  [B, T] -> [B, T, D].

        Token t at position p gives word_embedding[t] + pos_embedding[p].  Positions are
        0 .. T-1 (`self.position_ids[:, :T]`) unless `position_ids` [B, T] is given (the
        KV-cache path passes it).  Apply `self.embed_dropout` to the sum.  (With a
        `position_encoding` other than "learned", pos_embedding is a parameter-free zero:
        those positions act inside attention.)
        """
        ### BEGIN SOLUTION
        if position_ids is None:
            position_ids = self.position_ids[:, : input_ids.shape[1]]  # (1, T)
        embeddings = self.word_embedding(input_ids) + self.pos_embedding(position_ids)
        return self.embed_dropout(embeddings)  # (B, T, D)
        ### END SOLUTION

    def encode(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor,
               context: ForwardContext) -> torch.Tensor:
        """Run every layer.  hidden_states [B, T, D], attention_mask [B, T_k] 0/1 -> [B, T, D].

        `context` (KV cache, rotary tables, ALiBi bias) is built once by `forward`; each
        layer gets its own slice of it.
        """
        extended_mask = get_extended_attention_mask(attention_mask, hidden_states.dtype)
        for index, layer in enumerate(self.gpt_layers):
            hidden_states = layer(hidden_states, extended_mask, context.layer(index))
        return hidden_states

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                cache: KVCache | SinkKVCache | None = None) -> dict[str, torch.Tensor]:
        """input_ids [B, T], attention_mask [B, T] (1 = real token, 0 = pad, right-padded).

        Returns {'last_hidden_state': [B, T, D] after the final LayerNorm,
                 'last_token': [B, D], the state at each row's last real token}.

        With a `KVCache` (generation), attention_mask covers the cached positions too,
        [B, cache.length + T], any padding pattern is allowed (left-padded prompts),
        positions are counted over real tokens only (cumsum(mask) - 1), the cache grows by
        T, and 'last_token' is the state at the last position.  A `SinkKVCache` (a sliding
        window, handout 7.8) takes the same mask and keeps only the keys still visible.
        """
        self._check_inputs(input_ids, attention_mask, cache)
        T = input_ids.shape[1]
        position_ids = None
        key_positions = torch.arange(T, device=input_ids.device)[None]  # (1, T), any T
        if cache is None:
            visible = window_visibility(self.config, T, T, input_ids.device)
        else:
            key_positions, attention_mask = cache.key_positions(attention_mask)  # (B, T_k)
            position_ids = key_positions[:, -T:]  # (B, T)
            visible = window_visibility(self.config, T, key_positions.shape[1],
                                        input_ids.device, position_ids, key_positions)
        hidden_states = self.embed(input_ids, position_ids)  # (B, T, D)
        context = self.positions.context(key_positions[:, -T:], key_positions,
                                         hidden_states.dtype, cache, visible)
        hidden_states = self.encode(hidden_states, attention_mask, context)
        hidden_states = self.final_layer_norm(hidden_states)  # (B, T, D)
        if cache is not None:
            cache.advance(T)
            return {"last_hidden_state": hidden_states, "last_token": hidden_states[:, -1]}
        last_index = attention_mask.long().sum(dim=1) - 1  # (B,)
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)
        return {"last_hidden_state": hidden_states,
                "last_token": hidden_states[rows, last_index.clamp(min=0)]}

    def hidden_state_to_token(self, hidden_state: torch.Tensor) -> torch.Tensor:
        """Logits through the tied word embedding (handout 3.3).  [..., D] -> [..., V].

        GPT-2 has no separate output matrix: logits = hidden_state @ W^T with
        W = `self.output_weight` [V, D], which is word_embedding.weight (tied).
        """
        ### BEGIN SOLUTION
        return F.linear(hidden_state, self.output_weight)
        ### END SOLUTION

    @property
    def output_weight(self) -> torch.Tensor:
        """[V, D], the rows that give the logits: word_embedding.weight when
        config.tie_word_embeddings (GPT-2), else the separate `output_embedding`."""
        if self.config.tie_word_embeddings:
            return self.word_embedding.weight
        return self.output_embedding

    def _check_inputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      cache: KVCache | SinkKVCache | None) -> None:
        """Raise ValueError, naming the problem and the sizes, for inputs the model can't take.
        Under ``torch.compile`` only the shapes are checked: reading the values (token ids in
        the vocabulary, a 0/1 right-padded mask) would break the graph at every call."""
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be 2-D [batch, seq_len], got shape "
                             f"{tuple(input_ids.shape)}")
        if input_ids.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"input_ids must be an integer tensor, got {input_ids.dtype}")
        B, T = input_ids.shape
        past = 0 if cache is None else cache.length
        if tuple(attention_mask.shape) != (B, past + T):
            raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)} but "
                             f"input_ids has {(B, T)}" + (f" and the cache holds {past} "
                                                          f"positions" if cache else ""))
        if T == 0:
            raise ValueError("input_ids has no positions (seq_len 0)")
        limit = self.positions.max_length
        if limit is not None and past + T > limit:
            raise ValueError(f"sequence length {past + T} exceeds the context length {limit} "
                             "(learned positions have no row past the trained length)")
        if torch.compiler.is_compiling():
            return
        low, high = int(input_ids.min()), int(input_ids.max())
        if low < 0 or high >= self.config.vocab_size:
            bad = low if low < 0 else high
            raise ValueError(f"input_ids holds token id {bad}, outside the vocabulary "
                             f"[0, {self.config.vocab_size})")
        if ((attention_mask != 0) & (attention_mask != 1)).any():
            raise ValueError("attention_mask must hold only 0 and 1")
        if cache is None and T > 1:
            bad_rows = (attention_mask[:, 1:] > attention_mask[:, :-1]).any(dim=1)
            if bad_rows.any():
                row = int(bad_rows.nonzero()[0])
                raise ValueError(f"attention_mask row {row} is not right-padded: a real token "
                                 "follows a pad (put padding at the end of each row)")

    @classmethod
    def from_pretrained(cls, model: str = "gpt2", **config_overrides: Any) -> GPT2Model:
        """Load Hugging Face GPT-2 weights: a hub name (`gpt2`, `gpt2-medium`, `gpt2-large`,
        `gpt2-xl`; from the Hugging Face cache or the network) or a local folder holding a
        checkpoint (`config.json` + `model.safetensors`, as `save_pretrained` writes).

        The sizes come from the checkpoint's config; `config_overrides` change the rest
        (e.g. `attention_impl="sdpa"`, `hidden_dropout_prob=0.0`).  The model is returned
        in training mode, like any new `nn.Module`.

        Research switches (handout 9) load GPT-2 too: parameters GPT-2 lacks keep their
        fresh init (v_bias zero for vbias; k_bias, v_bias normal(0, 0.02); context_scale,
        gate_dense normal(0, 0.02) with zero bias; q_norm, k_norm unit weight, zero bias),
        except `output_embedding` (untied), which starts as a copy of the word embedding.
        GPT-2 weights the variant has no place for (pos_embedding without "learned"
        positions, biases with bias=False) are dropped.  A warning names both lists.
        A GPT-NeoX checkpoint (as `export_hf.py` writes for rope) loads as
        position_encoding="rope".
        """
        from transformers import AutoConfig

        try:
            hf_config = AutoConfig.from_pretrained(model)
            if hf_config.model_type == "gpt_neox":
                return cls._from_neox(model, **config_overrides)
            hf_state = read_hf_gpt2(model, hf_config)
        except OSError as error:
            raise OSError(
                f"could not load GPT-2 weights {model!r} ({error}).\n"
                "Without network access and without a Hugging Face cache holding them, pass a "
                "local folder with a Hugging Face GPT-2 checkpoint (config.json + "
                "model.safetensors) instead, e.g. `--model_path DIR`.  Make one on a machine "
                "with network: `python -c \"from transformers import GPT2LMHeadModel; "
                "GPT2LMHeadModel.from_pretrained('gpt2').save_pretrained('DIR')\"`."
            ) from error
        config = GPT2Config.from_hf(hf_config, **config_overrides)
        ours = cls(config)
        state, new, dropped = fit_to_model(ours, hf_to_ours(hf_state, config.num_hidden_layers))
        copy_checked(ours, state)
        if new or dropped:
            logger.warning("loaded %s into a GPT-2 variant: new parameters (fresh init, "
                           "output_embedding copied from word_embedding): %s; GPT-2 weights "
                           "not used: %s", model, new, dropped)
        return ours

    @classmethod
    def _from_neox(cls, model: str, **config_overrides: Any) -> GPT2Model:
        """A GPT-NeoX checkpoint (sequential residual, tanh GELU) as position_encoding="rope"
        (`models/export.py` maps it)."""
        from transformers import GPTNeoXForCausalLM

        from models.export import config_from_neox, neox_to_ours

        hf_model = GPTNeoXForCausalLM.from_pretrained(model)
        config = config_from_neox(hf_model.config, **config_overrides)
        ours = cls(config)
        copy_checked(ours, neox_to_ours(hf_model.state_dict(), config))
        return ours


HF_BUFFERS = (".attn.bias", ".attn.masked_bias")  # causal-mask buffers older checkpoints hold


def read_hf_gpt2(model: str, hf_config: Any) -> dict[str, torch.Tensor]:
    """The Hugging Face `GPT2Model` state dict of checkpoint `model` (names without the
    `transformer.` prefix, as `hf_to_ours` reads them), in the checkpoint's dtype.

    A local folder holding `model.safetensors` (or its shards, listed in
    `model.safetensors.index.json`) is read with `safetensors` alone: `transformer.` is
    stripped, and `lm_head.weight` (GPT-2's head is the word embedding) and the causal-mask
    buffers are dropped, as `transformers.GPT2Model.from_pretrained` drops them.  A weight
    missing from the folder is a ValueError naming it.  Anything else (a hub name, a
    `pytorch_model.bin`) goes through `transformers.GPT2Model.from_pretrained`.
    """
    index = os.path.join(model, "model.safetensors.index.json")
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    elif os.path.isfile(os.path.join(model, "model.safetensors")):
        files = ["model.safetensors"]
    else:
        from transformers import GPT2Model as HFGPT2Model

        return HFGPT2Model.from_pretrained(model).state_dict()
    from safetensors.torch import load_file

    state = {}
    for name in files:
        for key, tensor in load_file(os.path.join(model, name)).items():
            key = key.removeprefix("transformer.")
            if key != "lm_head.weight" and not key.endswith(HF_BUFFERS):
                state[key] = tensor
    layer = ("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
             "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
             "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias")
    expected = ["wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias",
                *(f"h.{i}.{name}" for i in range(hf_config.n_layer) for name in layer)]
    missing = [key for key in expected if key not in state]
    if missing:
        raise ValueError(f"{model} lacks GPT-2 weight {missing[0]!r} ({len(missing)} of "
                         f"{len(expected)} missing)")
    return state


def hf_to_ours(hf_state: dict[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """Map a Hugging Face `GPT2Model` state dict onto this model's names (handout 3.4).

    Hugging Face names (no `transformer.` prefix), layer i:
      wte.weight [V, D], wpe.weight [T_max, D], ln_f.{weight,bias} [D],
      h.i.ln_1, h.i.ln_2 ({weight,bias} [D]),
      h.i.attn.c_attn.{weight [D, 3D], bias [3D]}  (query | key | value, in that order),
      h.i.attn.c_proj.{weight [D, D], bias [D]},
      h.i.mlp.c_fc.{weight [D, 4D], bias [4D]}, h.i.mlp.c_proj.{weight [4D, D], bias [D]}.
    Their projections are `Conv1D`s, which store weight as [in, out]; `nn.Linear` stores
    [out, in], so every projection weight is transposed.  Ours, layer i:
      word_embedding, pos_embedding, final_layer_norm,
      gpt_layers.i.{attention_layer_norm <- ln_1, out_layer_norm <- ln_2,
                    self_attention.{query, key, value} <- c_attn split in three,
                    attention_dense <- attn.c_proj, interm_dense <- c_fc,
                    out_dense <- mlp.c_proj}.
    Returns {our name: tensor} for every parameter of ours.
    """
    ### BEGIN SOLUTION
    ours = {
        "word_embedding.weight": hf_state["wte.weight"],
        "pos_embedding.weight": hf_state["wpe.weight"],
        "final_layer_norm.weight": hf_state["ln_f.weight"],
        "final_layer_norm.bias": hf_state["ln_f.bias"],
    }
    for i in range(num_layers):
        hf, mine = f"h.{i}.", f"gpt_layers.{i}."
        q_w, k_w, v_w = hf_state[hf + "attn.c_attn.weight"].chunk(3, dim=1)  # 3 x (D, D)
        q_b, k_b, v_b = hf_state[hf + "attn.c_attn.bias"].chunk(3, dim=0)  # 3 x (D,)
        for name, weight, bias in (("query", q_w, q_b), ("key", k_w, k_b), ("value", v_w, v_b)):
            ours[f"{mine}self_attention.{name}.weight"] = weight.t()
            ours[f"{mine}self_attention.{name}.bias"] = bias
        for our_name, hf_name in (("attention_dense", "attn.c_proj"), ("interm_dense", "mlp.c_fc"),
                                  ("out_dense", "mlp.c_proj")):
            ours[f"{mine}{our_name}.weight"] = hf_state[f"{hf}{hf_name}.weight"].t()
            ours[f"{mine}{our_name}.bias"] = hf_state[f"{hf}{hf_name}.bias"]
        for our_name, hf_name in (("attention_layer_norm", "ln_1"), ("out_layer_norm", "ln_2")):
            ours[f"{mine}{our_name}.weight"] = hf_state[f"{hf}{hf_name}.weight"]
            ours[f"{mine}{our_name}.bias"] = hf_state[f"{hf}{hf_name}.bias"]
    return ours
    ### END SOLUTION


def fit_to_model(model: nn.Module, mapped: dict[str, torch.Tensor]
                 ) -> tuple[dict[str, torch.Tensor], list[str], list[str]]:
    """Fit GPT-2 weights (our names, from `hf_to_ours`) to a model with research switches.

    Returns (state for every parameter of `model`, names that GPT-2 lacks and that keep the
    model's own values, names of `mapped` the model has no place for).  An untied
    `output_embedding` is new but starts as a copy of the word embedding.
    """
    params = dict(model.named_parameters())
    if "output_embedding" in params:
        mapped = {**mapped, "output_embedding": mapped["word_embedding.weight"].clone()}
    new = sorted(set(params) - set(mapped) | ({"output_embedding"} & set(params)))
    dropped = sorted(set(mapped) - set(params))
    state = {name: mapped[name] if name in mapped else tensor.detach()
             for name, tensor in params.items()}
    return state, new, dropped


def copy_checked(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy every tensor of `state` into `model`'s parameter of the same name.

    Raises ValueError naming the key and both shapes on a shape mismatch, and naming the
    keys when `state` misses a parameter or has one the model lacks.
    """
    params = dict(model.named_parameters())
    missing, unexpected = sorted(set(params) - set(state)), sorted(set(state) - set(params))
    if missing or unexpected:
        raise ValueError(f"weights do not match the model: missing {missing}, "
                         f"unexpected {unexpected}")
    with torch.no_grad():
        for name, tensor in state.items():
            if tuple(tensor.shape) != tuple(params[name].shape):
                raise ValueError(f"shape mismatch for {name}: checkpoint has "
                                 f"{tuple(tensor.shape)}, model expects "
                                 f"{tuple(params[name].shape)}")
            params[name].copy_(tensor)

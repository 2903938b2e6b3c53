"""Weight quantization: int8 per output row, or the whole model in bfloat16 (handout 7.4).

Weight-only int8 keeps each weight row w [in] of a linear layer as int8 codes and one float32
scale,

    scale = max_j |w_j| / 127   (1.0 for an all-zero row),
    q_j   = clamp(round(w_j / scale), -127, 127)   (round half to even: torch.round),

and multiplies by the dequantized weight q * scale: a quarter of the float32 bytes, at the
cost of a rounding error of at most scale / 2 per weight.  The activations stay in float.

    model = quantize_model(model, "int8")     # the transformer blocks' linear layers
    model = quantize_model(model, "int8", include_embeddings=True)   # and the embeddings
    model = quantize_model(model, "bf16")     # every parameter and buffer in bfloat16
    model_bytes(model)                        # what the parameters and buffers take

`bench/quantize.py` measures the tradeoff (megabytes, bits per byte, task metric, time per
token) and compares with torchao's `Int8WeightOnlyConfig`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.base_gpt import gpt_backbones
from modules.mlp import GatedDense, swiglu

Q_MAX = 127  # symmetric int8 codes: -127 .. 127 (-128 is never used)
QUANTIZE_MODES = ("int8", "bf16")  # quantize_model's modes; "none" is the scripts' default


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8 codes of a weight (handout 7.4).

    Args:
        weight: [out, in], any float dtype (any memory layout).
    Returns:
        q: [out, in] int8, clamp(round(weight / scale[:, None]), -127, 127), rounding half
           to even (`torch.round`).
        scale: [out] float32, max |weight[row]| / 127, and 1.0 for an all-zero row.
    The division and rounding are done in float32, or in float64 for a float64 weight (so
    that q is the float64 formula's exactly); only then is the scale cast to float32.
    Example: the row [0.5, -1.27, 0.01] has scale 0.01 and codes [50, -127, 1]; the row
    [0, 0, 0] has scale 1.0 and codes [0, 0, 0].
    """
    ### BEGIN SOLUTION
    work = weight.detach().to(torch.promote_types(weight.dtype, torch.float32))
    scale = work.abs().amax(dim=1) / Q_MAX  # (out,)
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    q = torch.round(work / scale[:, None]).clamp(-Q_MAX, Q_MAX).to(torch.int8)  # (out, in)
    return q, scale.to(torch.float32)
    ### END SOLUTION


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """q [out, in] int8, scale [out] -> q * scale[:, None], [out, in] float32."""
    return q.to(torch.float32) * scale.to(torch.float32)[:, None]


class Int8Linear(nn.Module):
    """A linear layer whose weight is kept as int8 codes and a float32 scale per row.

    Buffers: `q` [out, in] int8, `scale` [out] float32, `bias` [out] (None without one).
    Nothing trains.  Build it from a trained layer with `Int8Linear.from_linear(layer)`.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device: torch.device | str | None = None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("q", torch.zeros(out_features, in_features, dtype=torch.int8,
                                              device=device))
        self.register_buffer("scale", torch.ones(out_features, device=device))
        self.register_buffer("bias", torch.zeros(out_features, device=device) if bias else None)

    @classmethod
    @torch.no_grad()
    def from_linear(cls, layer: nn.Linear) -> Int8Linear:
        """The int8 version of `layer` (an `nn.Linear`, weight [out, in]): q and scale from
        `quantize_int8(layer.weight)`, the bias copied.  The kit stores linear weights
        input-major (`GPTPreTrainedModel.store_linears_input_major`: an [out, in] view of a
        contiguous [in, out] tensor); q keeps that layout, so the matrix product reads
        contiguous memory as the float layer did."""
        if type(layer) is not nn.Linear:
            raise TypeError(f"Int8Linear.from_linear takes an nn.Linear, got "
                            f"{type(layer).__name__} (its forward is not x W^T + b alone)")
        weight = layer.weight
        module = cls(layer.in_features, layer.out_features, layer.bias is not None,
                     weight.device)
        q, scale = quantize_int8(weight)
        module.q = torch.empty_like(weight, dtype=torch.int8).copy_(q)  # weight's strides
        module.scale.copy_(scale)
        if layer.bias is not None:
            module.bias = layer.bias.detach().clone()
        return module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[..., in] -> [..., out] (handout 7.4).

        x @ W^T + bias with W = dequantize_int8(self.q, self.scale) [out, in], computed in
        x's dtype: W and the bias are cast to x.dtype first, and the result has x's dtype
        (bfloat16 in, bfloat16 out; float64 in, float64 out).  Without a bias (`self.bias`
        is None) there is nothing to add.
        Example: q = [[100, -50]], scale = [0.01], bias = [1.0], x = [2, 4] -> W = [[1.0,
        -0.5]] and y = [2 - 2 + 1] = [1.0].
        """
        ### BEGIN SOLUTION
        weight = dequantize_int8(self.q, self.scale).to(x.dtype)  # (out, in)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, weight, bias)  # (..., out)
        ### END SOLUTION

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Int8GatedDense(Int8Linear):
    """SwiGLU's `interm_dense` in int8: the value projection as an `Int8Linear`, gated by
    the layer's (int8) `gate_dense`:  x -> swiglu(gate(x), x W^T + b), as `GatedDense`."""

    @classmethod
    def from_gated(cls, layer: GatedDense, gate: nn.Module) -> Int8GatedDense:
        """The int8 version of `layer`, gated by `gate` (the layer's gate_dense, already
        quantized): held by reference, as `GatedDense` holds its gate."""
        plain = nn.Linear(layer.in_features, layer.out_features, layer.bias is not None,
                          device=layer.weight.device)
        plain.weight, plain.bias = layer.weight, layer.bias
        module = cls.from_linear(plain)
        module.gate = (gate,)
        return module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return swiglu(self.gate[0](x), super().forward(x))  # (B, T, I)


class Int8Embedding(nn.Module):
    """An `nn.Embedding` table [V, D] kept as int8 codes with a scale per row (`q`, `scale`).

    `forward(ids)` gathers and dequantizes the rows; `weight` is the whole dequantized
    table, float32, which the tied output layer (`GPT2Model.output_weight`) reads."""

    def __init__(self, embedding: nn.Embedding):
        super().__init__()
        q, scale = quantize_int8(embedding.weight)
        self.register_buffer("q", q.contiguous())
        self.register_buffer("scale", scale)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.q).to(torch.float32) * self.scale[ids][..., None]

    @property
    def weight(self) -> torch.Tensor:
        return dequantize_int8(self.q, self.scale)


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name), child, module)


def _quantize_int8(model: nn.Module, include_embeddings: bool) -> None:
    backbones = gpt_backbones(model)
    for backbone in backbones:
        prefix = next(name for name, m in model.named_modules() if m is backbone)
        prefix = f"{prefix}." if prefix else ""
        layers = list(backbone.gpt_layers.named_modules())
        for name, layer in layers:
            if type(layer) is nn.Linear:
                _replace(model, f"{prefix}gpt_layers.{name}", Int8Linear.from_linear(layer))
            elif isinstance(layer, nn.Linear) and not isinstance(layer, GatedDense):
                raise ValueError(f"quantize_model: int8 takes nn.Linear layers; "
                                 f"gpt_layers.{name} is a {type(layer).__name__}")
        for name, layer in layers:  # SwiGLU: the value projection, gated by its int8 gate
            if isinstance(layer, GatedDense):
                parent = backbone.gpt_layers.get_submodule(name.rpartition(".")[0])
                _replace(model, f"{prefix}gpt_layers.{name}",
                         Int8GatedDense.from_gated(layer, parent.gate_dense))
        if include_embeddings:
            for name in ("word_embedding", "pos_embedding"):
                if isinstance(getattr(backbone, name, None), nn.Embedding):
                    setattr(backbone, name, Int8Embedding(getattr(backbone, name)))


def quantize_model(model: nn.Module, mode: str, include_embeddings: bool = False) -> nn.Module:
    """Quantize `model` in place for evaluation and return it.

    mode "int8": every `nn.Linear` of the transformer blocks (`gpt_layers` of each GPT-2
    backbone inside `model`, or of `model` itself) becomes an `Int8Linear` (SwiGLU's gated
    `interm_dense` an `Int8GatedDense`, gated by the int8 `gate_dense`); a task head
    outside the backbone stays float.  The embeddings (and so the tied output layer) stay
    float unless `include_embeddings`, which makes `word_embedding` and a learned
    `pos_embedding` `Int8Embedding`s (an untied `output_embedding` stays float).
    mode "bf16": every parameter and buffer of `model` in bfloat16 (`include_embeddings`
    changes nothing: the embeddings are converted too).
    Raises ValueError naming a mode other than these, and for a linear layer of another
    kind (an unmerged adapter) under "int8".  Adapters must be merged first.
    """
    if mode not in QUANTIZE_MODES:
        raise ValueError(f"quantize_model: mode {mode!r}; choose one of {list(QUANTIZE_MODES)}")
    if mode == "bf16":
        return model.to(torch.bfloat16)
    _quantize_int8(model, include_embeddings)
    return model


def model_bytes(model: nn.Module) -> int:
    """Bytes of `model`'s parameters and buffers (each tensor once, tied weights too)."""
    tensors = {id(t): t for t in (*model.parameters(), *model.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values())

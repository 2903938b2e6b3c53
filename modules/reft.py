"""ReFT: representation fine-tuning with LoReFT interventions (handout 7.5).

LoReFT (Wu et al., 2024; pyreft's `LoreftIntervention`) leaves every weight of the model
frozen and edits hidden states instead: at chosen layers and positions, the state h [D]
becomes

    h + (W h + b - R h) R        (row vectors: h + (h W^T + b - h R^T) R)

with R [r, D] of orthonormal rows (R R^T = I) and W [r, D], b [r] a linear map: inside the
r-dimensional subspace spanned by R's rows, the part R h of h is replaced by W h + b, and h
is untouched outside it.  R stays orthonormal through training because it is parametrized
(`OrthonormalRows`: the Gram-Schmidt rows of a free matrix, which any optimizer, weight
decay included, may move).  An intervention of rank r trains r (2D + 1) numbers per layer.

    names = apply_reft(model, rank=4, layers="all", positions="last")
    ...train: only the interventions (and a task head) have requires_grad...

`apply_reft` adds the interventions to the chosen layers' outputs (`GPT2Layer`, by forward
hooks) at the chosen real-token positions of each row: "last" (the last k with "last:k")
or "first+last" (the first k and the last k with "first+last:k", k = 1 by default; pyreft's
"f1+l1").  In generation with a KV cache the positions are those of the prompt, edited when
the prompt is encoded; the tokens generated after it pass unedited.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrize import register_parametrization

from models.base_gpt import GPTPreTrainedModel, gpt_backbones


class OrthonormalRows(nn.Module):
    """The parametrization of R [r, D] (r <= D): the orthonormal rows that Gram-Schmidt makes
    of a free V [r, D] of full rank, i.e. R^T = Q of the QR decomposition V^T = Q T with
    T's diagonal made positive.  R is the same for V and c V (c > 0), so weight decay, which
    shrinks V, leaves R orthonormal, and an orthonormal R is its own V (`right_inverse`).

    (torch's `orthogonal(..., orthogonal_map="householder")` keeps the signs of R's columns
    in the diagonal of its parameter as +-1 read by truncation to int; weight decay takes it
    below 1 and R collapses to zero.)  Example: V = [[2, 0], [1, 1]] -> R = [[1, 0], [0, 1]].
    """

    def forward(self, V: torch.Tensor) -> torch.Tensor:
        Q, T = torch.linalg.qr(V.mT)  # (D, r), (r, r)
        signs = torch.where(T.diagonal() < 0, -1.0, 1.0).to(Q.dtype)  # (r,)
        return (Q * signs).mT  # (r, D)

    def right_inverse(self, R: torch.Tensor) -> torch.Tensor:
        return R


class LoReFTIntervention(nn.Module):
    """One LoReFT edit of D-dimensional hidden states in a rank-r subspace (handout 7.5).

    Attributes:
        rotate_layer: nn.Linear(D, r, bias=False) whose weight, R [r, D], is kept with
            orthonormal rows by the `OrthonormalRows` parametrization (initialised
            orthonormal; `rotate_layer.weight = Q` sets it to an orthonormal Q).
        learned_source: nn.Linear(D, r): W [r, D] and b [r].
        dropout: dropout on the edited state, as pyreft applies it (`nn.Identity` at p = 0).
    """

    def __init__(self, hidden_size: int, rank: int, dropout: float = 0.0):
        super().__init__()
        if not isinstance(hidden_size, int) or hidden_size < 1:
            raise ValueError(f"LoReFT hidden_size must be an integer >= 1, got {hidden_size!r}")
        check_rank(rank, hidden_size)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"LoReFT dropout must be in [0, 1), got {dropout!r}")
        rotate = nn.Linear(hidden_size, rank, bias=False)
        nn.init.orthogonal_(rotate.weight)
        # R is a function of its one parameter alone (no buffer), so saving the trainable
        # parameters saves R.
        register_parametrization(rotate, "weight", OrthonormalRows())
        self.rotate_layer = rotate
        self.learned_source = nn.Linear(hidden_size, rank)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    @property
    def R(self) -> torch.Tensor:
        """[r, D], orthonormal rows (R R^T = I).  For a bfloat16 or float16 intervention
        (`quantize_model(model, "bf16")`) R is computed in float32, which the QR
        decomposition needs, and returned in the intervention's dtype."""
        original = self.rotate_layer.parametrizations.weight.original
        if original.dtype in (torch.float32, torch.float64):
            return self.rotate_layer.weight
        to_orthogonal = self.rotate_layer.parametrizations.weight[0]
        return to_orthogonal(original.float()).to(original.dtype)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """[..., D] -> [..., D] (handout 7.5).

        Returns dropout(h + (learned_source(h) - h R^T) R), in h's dtype: the subspace part
        h R^T [..., r] is replaced by W h + b = learned_source(h) [..., r] and mapped back
        with R [r, D] (not R^T).  Dropout acts on the whole edited state, in training only.
        Worked example (D = 2, r = 1): R = [[1, 0]], W = [[0, 1]], b = [1], h = [3, 5]:
        h R^T = [3], W h + b = [6], so the result is [3, 5] + [6 - 3] [[1, 0]] = [6, 5].
        """
        ### BEGIN SOLUTION
        R = self.R  # (r, D)
        delta = (self.learned_source(h) - F.linear(h, R)) @ R  # (..., D)
        return self.dropout((h + delta).to(h.dtype))
        ### END SOLUTION

    def extra_repr(self) -> str:
        rank, hidden = self.rotate_layer.weight.shape
        return f"hidden_size={hidden}, rank={rank}"


def check_rank(rank: int, hidden_size: int) -> None:
    """ValueError naming `rank` unless it is an integer in [1, hidden_size]: R [rank,
    hidden_size] has orthonormal rows."""
    if not isinstance(rank, int) or not 1 <= rank <= hidden_size:
        raise ValueError(f"LoReFT rank must be an integer in [1, hidden_size={hidden_size}], "
                         f"got {rank!r}")


def parse_positions(text: str) -> tuple[int, int]:
    """"last", "last:k", "first+last" or "first+last:k" -> (first k, last k) per row.

    Examples: "last" -> (0, 1); "first+last:2" -> (2, 2).  ValueError naming the text
    otherwise (k must be an integer >= 1)."""
    kind, _, count = text.partition(":")
    if kind not in ("last", "first+last") or (count and not count.isdigit()) or count == "0":
        raise ValueError(f"ReFT positions {text!r}: choose last, last:k, first+last or "
                         "first+last:k with an integer k >= 1")
    k = int(count) if count else 1
    return (k if kind == "first+last" else 0), k


def parse_layers(text: str, num_layers: int) -> list[int]:
    """"all" -> [0 .. num_layers - 1]; "0,3" -> [0, 3] (sorted, each once).  ValueError
    naming the text when an entry is not a layer index of the model."""
    if text == "all":
        return list(range(num_layers))
    entries = [entry.strip() for entry in text.split(",")]
    if not all(entry.isdigit() and int(entry) < num_layers for entry in entries):
        raise ValueError(f"ReFT layers {text!r}: give 'all' or comma-separated layer indices "
                         f"in 0 .. {num_layers - 1}")
    return sorted({int(entry) for entry in entries})


def edited_positions(attention_mask: torch.Tensor, first: int, last: int) -> torch.Tensor:
    """[B, T] bool: the first `first` and the last `last` real tokens of each row of the 0/1
    `attention_mask` [B, T] (any padding side).  Example: mask [1, 1, 1, 1, 0], first 1,
    last 2 -> [True, False, True, True, False]."""
    real = attention_mask.bool()
    index = attention_mask.long().cumsum(dim=1) - 1  # (B, T): rank among the row's real tokens
    count = attention_mask.long().sum(dim=1, keepdim=True)  # (B, 1)
    return real & ((index < first) | (index >= count - last))


class ReFT(nn.Module):
    """The interventions of one GPT-2 backbone (`backbone.reft`), keyed by layer index, and
    the hooks that apply them: the backbone's forward pre-hook reads the attention mask and
    picks the positions, each chosen layer's forward hook edits its output there."""

    def __init__(self, hidden_size: int, rank: int, layers: list[int], first: int, last: int,
                 dropout: float = 0.0):
        super().__init__()
        self.interventions = nn.ModuleDict(
            {str(index): LoReFTIntervention(hidden_size, rank, dropout) for index in layers})
        self.first, self.last = first, last
        self.where: torch.Tensor | None = None  # [B, T] bool of the current forward pass

    def attach(self, backbone: GPTPreTrainedModel) -> None:
        backbone.register_forward_pre_hook(self.choose_positions, with_kwargs=True)
        for key in self.interventions:
            backbone.gpt_layers[int(key)].register_forward_hook(
                functools.partial(self.edit, key))

    def choose_positions(self, backbone: nn.Module, args: tuple, kwargs: dict) -> None:
        """`GPT2Model.forward(input_ids, attention_mask, cache=None)`'s pre-hook: the
        positions to edit, or none on a step that extends a filled KV cache."""
        mask = args[1] if len(args) > 1 else kwargs["attention_mask"]
        cache = args[2] if len(args) > 2 else kwargs.get("cache")
        extending = cache is not None and cache.length > 0
        self.where = None if extending else edited_positions(mask, self.first, self.last)

    def edit(self, key: str, layer: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        if self.where is None:
            return output
        edited = self.interventions[key](output)  # (B, T, D)
        return torch.where(self.where[..., None], edited, output)


def apply_reft(model: nn.Module, rank: int = 4, layers: str = "all", positions: str = "last",
               dropout: float = 0.0) -> list[str]:
    """Freeze every GPT-2 backbone inside `model` (or `model` itself) and give it a `ReFT`
    (`backbone.reft`) with one `LoReFTIntervention` per chosen layer (`parse_layers`) at
    the chosen positions (`parse_positions`).  Parameters outside the backbones (a task
    head) keep their `requires_grad`.  Returns the edited layers' qualified names.
    ValueError naming a bad value, or when the model already has interventions."""
    first, last = parse_positions(positions)
    names = []
    for backbone in gpt_backbones(model):
        if hasattr(backbone, "reft"):
            raise ValueError("apply_reft: the model already has ReFT interventions")
        chosen = parse_layers(layers, backbone.config.num_hidden_layers)
        backbone.requires_grad_(False)
        reft = ReFT(backbone.config.hidden_size, rank, chosen, first, last, dropout)
        backbone.reft = reft.to(device=backbone.device, dtype=backbone.dtype)
        reft.attach(backbone)
        prefix = next(name for name, m in model.named_modules() if m is backbone)
        names += [f"{prefix}.gpt_layers.{i}".lstrip(".") for i in chosen]
    return names

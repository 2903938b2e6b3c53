"""What a graded case is, and the registry of all cases (visible and, on staff machines, hidden).

A `Case` names a *producer* (a function in `autograder/producers/`, run in the sandboxed
child on seeded inputs built from `params`) and says how the judge scores its arrays:
points, tolerance, Gradescope visibility, and the *rules* of the handout it checks.  The
rules are what the targeted mutants in `tests/` break: a mutant of rule R must lose
exactly the cases whose `rules` contain R.

A case names the fenced functions it grades (`grades`, `"<file>:<qualname>"`), and so its
part (`autograder/parts.py`): an assignment grades the cases of its parts only.  Each
part declares the library calls that would do its fenced functions' job for them
(`FORBIDDEN_CALLS`); a case refuses them (`forbidden`) in the source of the functions it
grades (`autograder/judge.py`) and while they run (`autograder/child.py`).

Every module of `autograder/cases/` is a case list (`CASES`), found by name: `visible*`
modules ship with the handout, with their reference outputs, so that
`python -m autograder check` works for students; `hidden*` modules are staff-only and
simply absent from a handout.  A new case file is picked up without being listed.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.manifest import PARTS
from autograder.parts import part_of_function

# Gradescope visibilities: "hidden", "after_due_date", "after_published", "visible".
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
CASES_DIR = Path(__file__).resolve().parent / "cases"
# Wall-clock seconds the child may spend on one group (imports of the student's modules
# included); `pretrained` also imports transformers.
GROUP_TIMEOUT_S = {"pretrained": 60.0}
DEFAULT_GROUP_TIMEOUT_S = 30.0
# part -> what would do the job of its fenced functions: a module (everything in it) or a
# dotted path to a function or class.  Grading refuses each in the source of a graded
# function and while it runs (a call through another function counts: the solved
# `sdpa_attention` called from `attention`); that function's cases score 0.
ATTENTION_KERNELS = ("torch.nn.functional.scaled_dot_product_attention",
                     "torch.nn.functional.multi_head_attention_forward",
                     "torch.nn.MultiheadAttention")
FORBIDDEN_CALLS: dict[str, tuple[str, ...]] = {
    "model": (*ATTENTION_KERNELS, "transformers"),
    "optimizer": ("torch.optim",),
    "tokenizer": ("tokenizers", "tiktoken", "transformers"),
    "tasks": ("transformers", "peft", "trl"),
    "sdpa": ("torch.nn.functional.multi_head_attention_forward", "torch.nn.MultiheadAttention",
             "transformers"),
    "lora": ("peft", "trl", "transformers"),
    "dpo": ("trl", "peft", "transformers"),
    "preconditioned": ("torch.optim",),  # torch.optim.Muon, torch.optim._muon's Newton-Schulz
    "smart": ("smart_pytorch", "transformers"),
    "pretraining": ("transformers",),
    "research": (*ATTENTION_KERNELS, "transformers"),
    "quantize": ("torchao", "torch.ao", "torch.quantization", "torch.nn.quantized",
                 "torch.quantize_per_channel", "torch._weight_int8pack_mm", "transformers"),
    "reft": ("pyreft", "pyvene", "peft", "transformers"),
    # the causal mask is visible_keys without a window: the attention may not take it from
    # a solved visible_keys, and visible_keys may not read it off a solved attention
    "window": (*ATTENTION_KERNELS, "modules.attention.CausalSelfAttention", "transformers"),
}
FORBIDDEN_CALLS["model"] += ("modules.attention.visible_keys",)
FORBIDDEN_CALLS["sdpa"] += ("modules.attention.visible_keys",)
# Names inside a refused module that a graded function may use: the base class the
# handout's AdamW extends (its module, and the name `torch.optim` exports it under).
ALLOWED_CALLS = ("torch.optim.optimizer", "torch.optim.Optimizer")


@dataclass(frozen=True)
class Case:
    name: str  # unique, "<group>/<what>", also the key prefix in the reference .npz
    producer: str  # key of autograder.producers.PRODUCERS
    params: dict[str, Any]  # JSON-able inputs; seeds live here
    points: float
    rules: tuple[str, ...]  # handout rules this case checks (see RULES)
    title: str  # one line shown to the student
    visibility: str = "after_due_date"
    atol: float = 1e-5  # |out - ref| <= atol + rtol * |ref|, element-wise
    rtol: float = 1e-5
    dropout_keys: tuple[str, ...] = ()  # keys judged by dropout pattern, not by value
    time_limit_s: float | None = None  # timed by the parent from outside the child
    extra: dict[str, Any] = field(default_factory=dict)  # judge options (e.g. dropout p)
    grades: tuple[str, ...] = ()  # the fenced functions it grades, "<file>:<qualname>"
    forbidden: tuple[str, ...] = ()  # FORBIDDEN_CALLS of its part (`all_cases` sets it)

    @property
    def group(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def visible(self) -> bool:
        return self.visibility == "visible"

    def plan_entry(self) -> dict[str, Any]:
        """What the child needs to run this case (no points, no tolerances): the calls it
        refuses while the functions it grades run, too."""
        return {"name": self.name, "producer": self.producer, "params": self.params,
                "grades": list(self.grades), "forbidden": list(self.forbidden),
                "allowed": list(ALLOWED_CALLS)}


# rule tag -> the rule in words (a failed case's feedback states each of its rules this
# way); every tag used by a case must be listed here.
RULES = {
    "attn_scale": "scores are divided by sqrt(d)",
    "attn_mask_before_softmax": "masks are added to the scores before the softmax",
    "attn_causal": "a query attends to itself and earlier keys only",
    "attn_padding": "padding keys get no attention",
    "attn_heads": "heads are merged back to [B, T, D] in order",
    "attn_kv_offset": "with a KV cache (T_q < T_k) query i sits at position i + T_k - T_q: "
                      "it attends to keys j <= i + T_k - T_q",
    "attn_dropout": "attention dropout acts on the probabilities after the softmax, in "
                    "training only: each probability becomes 0 or p / (1 - dropout); the "
                    "scores before the softmax are never dropped",
    "sdpa": "the fused path follows the same rule",
    "add": "add returns input + dropout(dense(output)), no layer norm",
    "pre_ln": "layer norm is applied to each sub-layer's input (pre-LN)",
    "layer_dropout": "forward hands attention_dropout to the attention's add and "
                     "out_dropout to the MLP's add, and drops nothing else",
    "gelu_tanh": "the MLP uses GELU with the tanh approximation (GPT-2's gelu_new): the "
                 "layer cases supply it as interm_af, the whole-model cases use the "
                 "activation your GPT2Layer.__init__ sets",
    "embed": "embed returns word_embedding[ids] + pos_embedding[positions], positions "
             "0 .. T-1 by default, then dropout on the sum",
    "embed_position_ids": "embed(input_ids, position_ids) uses the given position_ids [B, T] "
                          "instead of 0 .. T-1",
    "tied_output": "logits use the word embedding matrix (tied weights)",
    "model": "your whole model, scaffold included: embed, every layer, the final layer "
             "norm, last_token at each row's last real token",
    "hf_mapping": "Hugging Face weights map onto ours (split, transpose)",
    "adam_moments": "AdamW moments from zeros, per parameter: m = b1 m + (1 - b1) g, "
                    "v = b2 v + (1 - b2) g^2, each group's own hyper-parameters, parameters "
                    "without a gradient skipped",
    "bias_correction": "bias correction when correct_bias: alpha_t = lr * sqrt(1 - b2^t) / "
                       "(1 - b1^t) with t counted from 1 per parameter (alpha_t = lr without)",
    "adam_eps": "the efficient form p -= alpha_t * m / (sqrt(v) + eps): eps is added to "
                "sqrt(v), not to sqrt(v_hat) as in the textbook m_hat / (sqrt(v_hat) + eps)",
    "weight_decay": "decoupled weight decay p -= lr * weight_decay * p, after the Adam "
                    "update",
    "bpe_count": "pairs are counted per adjacent position, weighted by word frequency",
    "bpe_merge": "merge_ids replaces non-overlapping occurrences left to right",
    "bpe_ties": "the most frequent pair wins; ties go to the lexicographically greater pair",
    "bpe_encode": "encoding applies the lowest-ranked merge first, until none applies",
    "alibi_slopes": "ALiBi slopes 2^(-8h/H) for a power of two H, else the P slopes of the "
                    "largest power of two P below H and then every other slope of 2P heads",
    "alibi_bias": "bias[b, h, i, j] = slopes[h] * (key_positions[b, j] - "
                  "query_positions[b, i])",
    "rotary_tables": "rotary angles p * theta^(-2k / r), k = 0 .. r/2 - 1, as cos and sin "
                     "[B, 1, T, r/2]",
    "rotary_half": "rotate_half pairs channel k with k + r/2: (a cos - b sin, b cos + a sin); "
                   "channels r .. d-1 unchanged",
    "rotary_interleaved": "rotate_interleaved pairs channels 2k and 2k + 1: (a cos - b sin, "
                          "b cos + a sin); channels r .. d-1 unchanged",
    "swiglu": "swiglu(gate, value) = silu(gate) * value",
    "z_loss": "z-loss = gamma * mean over positions of logsumexp(logits)^2, in float32",
    "z_loss_float32": "z_loss computes in float32 whatever the logits' dtype (bfloat16 under "
                      "autocast) and returns a float32 scalar",
    "mu_center": "mu_center_ subtracts the mean row from every row, in place, and returns "
                 "the same tensor",
    "lora_forward": "LoRALinear.forward returns base(x) + (dropout(x) @ lora_A^T @ lora_B^T) "
                    "* scaling",
    "lora_scaling": "the update is scaled by scaling = alpha / r (alpha / sqrt(r) with "
                    "rslora), not by alpha",
    "lora_dropout": "LoRA dropout acts on the adapter branch's input only: base(x) and the "
                    "update itself are not dropped",
    "lora_init": "a fresh adapter (lora_B zero, as __init__ sets it) leaves base(x) unchanged",
    "lora_delta": "delta_weight is (lora_B @ lora_A) * scaling, [out, in] like base.weight",
    "lora_merge": "merge adds delta_weight() to base.weight in place and sets merged",
    "quant_scale": "quantize_int8's scale is max |weight[row]| / 127 per row, float32 [out], "
                   "and q = clamp(round(weight / scale[:, None]), -127, 127) as int8",
    "quant_zero_row": "an all-zero row has scale 1.0 (and codes 0)",
    "quant_round": "q rounds half to even (torch.round): 2.5 -> 2, 3.5 -> 4, -2.5 -> -2",
    "int8_forward": "Int8Linear.forward is x @ dequantize_int8(q, scale)^T + bias (no bias "
                    "when it is None)",
    "int8_dtype": "Int8Linear.forward computes in x's dtype: W and the bias are cast to "
                  "x.dtype, the result has x's dtype",
    "reft_edit": "LoReFTIntervention.forward returns h + (learned_source(h) - h R^T) R, in "
                 "h's dtype (R [r, D] maps back, not R^T)",
    "reft_dropout": "LoReFT dropout acts on the whole edited state h + (...) R, in training "
                    "only",
    "logp_shift": "the token at position t is scored by log_softmax(logits[t - 1])",
    "logp_completion": "only completion tokens count (the end-of-text token included); "
                       "prompt and padding tokens never do",
    "logp_average": "average=True divides each row's sum by its number of completion tokens",
    "dpo_margin": "the margin is (policy_chosen - policy_rejected) - (reference_chosen - "
                  "reference_rejected), without the reference bracket when reference_free, "
                  "passed to the loss of loss_type",
    "dpo_rewards": "rewards are beta * (policy - reference) for chosen and rejected, detached",
    "dpo_beta": "sigmoid_loss scales the margin by beta: sigma(beta * z)",
    "dpo_sigmoid": "sigmoid_loss = -(1 - eps) log sigma(beta z) - eps log sigma(-beta z), "
                   "eps = label_smoothing (DPO at eps = 0)",
    "dpo_ipo": "ipo_loss = (z - 1 / (2 beta))^2",
    "dpo_hinge": "hinge_loss = max(0, 1 - beta z)",
    "ns_normalize": "newton_schulz first divides X by its Frobenius norm ||X||_F",
    "ns_eps": "the norm is clamped at eps: X / max(||X||_F, eps), so a matrix whose norm is "
              "below eps is divided by eps (and a zero matrix stays zero)",
    "ns_iteration": "newton_schulz repeats `steps` times A = X X^T, X = a X + (b A + c A A) X "
                    "with (a, b, c) = coefficients, in G's dtype (not bfloat16)",
    "muon_momentum": "Muon's buffer from zeros, per parameter: buf = buf.lerp(g, 1 - momentum), "
                     "each group's own hyper-parameters, parameters without a gradient skipped",
    "muon_nesterov": "with nesterov the update orthogonalised is g.lerp(buf, momentum), "
                     "without it buf",
    "muon_lr_original": "adjust_lr_fn None or 'original' scales lr by sqrt(max(1, rows / "
                        "cols))",
    "muon_lr_rms": "adjust_lr_fn 'match_rms_adamw' scales lr by 0.2 * sqrt(max(rows, cols))",
    "muon_weight_decay": "Muon's decoupled decay p *= 1 - lr * weight_decay (the unadjusted lr) "
                         "comes before the update",
    "shampoo_factors": "Shampoo's factors from zeros: L = beta2 L + (1 - beta2) G G^T, R = "
                       "beta2 R + (1 - beta2) G^T G, parameters without a gradient skipped",
    "shampoo_roots": "the update is (L + eps I)^(-1/4) G (R + eps I)^(-1/4)",
    "shampoo_update_every": "the inverse roots are recomputed at steps 1, 1 + update_every, ... "
                            "and reused in between",
    "shampoo_momentum": "heavy-ball momentum on the update: buf = momentum * buf + update, "
                        "then p -= lr * buf",
    "shampoo_weight_decay": "Shampoo's decoupled decay p *= 1 - lr * weight_decay comes before "
                            "the update",
    "smart_kl_directions": "symmetric_kl = KL(softmax(target.detach()) || softmax(input)) + "
                           "KL(softmax(input.detach()) || softmax(target)): each KL's gradient "
                           "reaches one side only",
    "smart_kl_reduction": "symmetric_kl sums over the classes (last dimension) and averages "
                          "over the rows",
    "smart_ascent": "each step of smart_loss moves the noise along the gradient of "
                    "symmetric_kl(eval_fn(embeddings + noise), clean_logits.detach()) with "
                    "respect to the noise: step = noise + step_size * grad",
    "smart_normalise": "the new noise is step / (max |step| over the last dimension + "
                       "epsilon), detached",
    "smart_final": "smart_loss returns symmetric_kl(eval_fn(embeddings + noise), clean_logits) "
                   "with clean_logits attached, after num_steps steps",
    "sentiment_head": "sentiment logits are classifier(dropout(last_token)), last_token being "
                      "GPT-2's state at each row's last real token",
    "sentiment_dropout": "the classifier's self.dropout acts on last_token, before the "
                         "linear layer, in training only",
    "cloze": "paraphrase logits are hidden_state_to_token(last_token) at the answer ids, "
             "[no, yes] in that order",
    "sample_greedy": "temperature 0 returns the argmax of each row",
    "sample_temperature": "probabilities are softmax(logits / temperature)",
    "sample_top_p": "top-p keeps the smallest set of most likely tokens whose probability "
                    "reaches top_p, then renormalises",
    "sample_draw": "one u = torch.rand(B, generator=generator) per row; the first token in "
                   "sorted order whose cumulative kept probability exceeds u",
    "window_causal": "visible_keys returns torch.bool [T_q, T_k]; query i sits at position "
                     "p = i + T_k - T_q and never sees a key j > p; without a window it sees "
                     "every j <= p (sinks change nothing)",
    "window_band": "with a window W, query p sees keys p - W < j <= p: W keys, itself "
                   "included",
    "window_sinks": "with a window, keys j < sinks stay visible to every query p >= j, "
                    "besides the window",
}


def rules_in_words(case: Case) -> str:
    """What a failed case's feedback ends with: each rule the case depends on, in words."""
    return "\n".join(["This case depends on every one of these rules:"]
                     + [f"- {RULES[rule]}" for rule in case.rules])


ATTENTION_RULES = ("attn_scale", "attn_mask_before_softmax", "attn_causal", "attn_padding",
                   "attn_heads")
MODEL_RULES = ATTENTION_RULES + ("add", "pre_ln", "gelu_tanh", "embed", "model")


def case_modules(include_hidden: bool = True) -> list[str]:
    """The case modules of this tree: `visible*` first, then (when asked) `hidden*`."""
    names = sorted(info.name for info in pkgutil.iter_modules([str(CASES_DIR)]))
    kinds = ("visible", "hidden") if include_hidden else ("visible",)
    return [f"autograder.cases.{name}" for kind in kinds for name in names
            if name.startswith(kind)]


def case_part(case: Case, root: Path) -> str:
    """The one part of the functions `case` grades (read from the tree at `root`)."""
    parts = {part_of_function(root, function) for function in case.grades}
    if len(parts) != 1:
        raise ValueError(f"case {case.name}: grades {list(case.grades)}, which belong to "
                         f"{sorted(parts) or 'no part'}; a case grades one part")
    return parts.pop()


def all_cases(include_hidden: bool = True, parts: tuple[str, ...] | None = None,
              root: Path | None = None) -> list[Case]:
    """Every case of this tree (of `parts` only, when given: their functions are read from
    `root`), in grading order: by part, then by group as first listed; validated (unique
    names, known rules, one part each), each with the `FORBIDDEN_CALLS` of its part."""
    cases: list[Case] = []
    for module_name in case_modules(include_hidden):
        cases.extend(importlib.import_module(module_name).CASES)
    names = [case.name for case in cases]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate case names: {duplicates}")
    for case in cases:
        unknown = set(case.rules) - set(RULES)
        if unknown or case.visibility not in VISIBILITIES:
            raise ValueError(f"case {case.name}: unknown rules {sorted(unknown)} or "
                             f"visibility {case.visibility!r}")
    root = root or Path(__file__).resolve().parents[1]
    part = {case.name: case_part(case, root) for case in cases}
    cases = [dataclasses.replace(case, forbidden=FORBIDDEN_CALLS[part[case.name]])
             for case in cases]
    if parts is not None:
        cases = [case for case in cases if part[case.name] in parts]
    groups = list(dict.fromkeys(case.group for case in cases))
    order = list(PARTS)
    return sorted(cases, key=lambda c: (order.index(part[c.name]), groups.index(c.group)))


def select(cases: list[Case], only: list[str] | None) -> list[Case]:
    """The cases of the groups in `only` (all when empty); unknown groups raise ValueError."""
    if not only:
        return cases
    groups = {c.group for c in cases}
    unknown = sorted(set(only) - groups)
    if unknown:
        raise ValueError(f"unknown case groups {unknown}; choose from {sorted(groups)}")
    return [c for c in cases if c.group in only]


def group_timeout(group: str) -> float:
    return GROUP_TIMEOUT_S.get(group, DEFAULT_GROUP_TIMEOUT_S)

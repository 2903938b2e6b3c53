"""Correct code written the way the CS224N starter writes it loses nothing it earned.

Each submission is the reference solution with one mechanical edit of the kind the starter's
scaffolding (or a student's habit) makes outside the fences.  A correct edit must keep full
marks; an edit that really changes a rule must lose exactly the cases of that rule, at their
stated tolerance.  Tolerances: the judge's own, per case (`autograder/cases/`).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from autograder_helpers import REPO, assert_valid_results, reference_submission
from test_autograder_mutants import mutate

from autograder.case import all_cases, all_rules
from autograder.fences import BEGIN
from autograder.grade import grade
from autograder.manifest import HANDOUT_FILES
from autograder.parts import assignment
from autograder.producers.model import PRODUCERS, case_config
from config import GPT2Config

EXTRA_PARAMETER = (
    "models/gpt2.py",
    "        self.final_layer_norm = layer_norm(config, config.hidden_size)\n",
    "        self.final_layer_norm = layer_norm(config, config.hidden_size)\n"
    "        self.pooler = nn.Linear(config.hidden_size, config.hidden_size)  # never used\n")
PADDING_IDX = (
    "models/gpt2.py",
    "self.word_embedding = nn.Embedding(config.vocab_size, config.hidden_size)",
    "self.word_embedding = nn.Embedding(config.vocab_size, config.hidden_size,\n"
    "                                           padding_idx=config.pad_token_id)")
EINOPS = [
    ("modules/attention.py", "from torch import nn\n",
     "from einops import rearrange\nfrom torch import nn\n"),
    ("modules/attention.py",
     "        proj = proj.view(B, T, self.num_attention_heads, self.attention_head_size)"
     "  # (B, T, H, d)\n        return proj.transpose(1, 2)  # (B, H, T, d)",
     "        return rearrange(proj, 'b t (h d) -> b h t d', h=self.num_attention_heads)"),
    ("modules/attention.py",
     "        out = probs @ value  # (B, H, T_q, d)\n"
     "        return out.transpose(1, 2).reshape(B, T_q, H * d)  # (B, T_q, D)",
     "        return rearrange(probs @ value, 'b h t d -> b t (h d)')"),
]
ONE_ARGUMENT_EMBED = [
    ("models/gpt2.py", "    def embed(self, input_ids: torch.Tensor,\n"
     "              position_ids: torch.Tensor | None = None) -> torch.Tensor:",
     "    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:"),
    ("models/gpt2.py", "        if position_ids is None:\n"
     "            position_ids = self.position_ids[:, : input_ids.shape[1]]  # (1, T)",
     "        position_ids = self.position_ids[:, : input_ids.shape[1]]  # (1, T)"),
    ("models/gpt2.py", "hidden_states = self.embed(input_ids, position_ids)",
     "hidden_states = self.embed(input_ids)"),
]
EXACT_GELU_IN_INIT = ("modules/gpt2_layer.py", "            setattr(self, name, part)\n",
                      "            setattr(self, name, part)\n        self.interm_af = F.gelu\n")
TEXTBOOK_EPS = (
    "optimizer.py",
    '                alpha = group["lr"]\n'
    '                if group["correct_bias"]:\n'
    '                    alpha = alpha * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)\n'
    '                p.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-alpha)\n',
    '                m_hat, v_hat = m, v\n'
    '                if group["correct_bias"]:\n'
    '                    m_hat, v_hat = m / (1.0 - beta1**t), v / (1.0 - beta2**t)\n'
    '                p.sub_(group["lr"] * m_hat / (v_hat.sqrt() + group["eps"]))\n')

# Three real submissions, rebuilt from the reference.  (a) The scaffold passes two extra
# arguments to the student's attention, which takes them with defaults.
ATTENTION_EXTRA_ARGUMENTS = [
    ("modules/attention.py",
     "    def attention(self, key: torch.Tensor, query: torch.Tensor, value: torch.Tensor,\n"
     "                  attention_mask: torch.Tensor) -> torch.Tensor:",
     "    def attention(self, key: torch.Tensor, query: torch.Tensor, value: torch.Tensor,\n"
     "                  attention_mask: torch.Tensor, scale: float | None = None,\n"
     "                  causal: bool = True) -> torch.Tensor:"),
    ("modules/attention.py",
     "    def sdpa_attention(self, key: torch.Tensor, query: torch.Tensor, value: torch.Tensor,\n"
     "                       attention_mask: torch.Tensor) -> torch.Tensor:",
     "    def sdpa_attention(self, key: torch.Tensor, query: torch.Tensor, value: torch.Tensor,\n"
     "                       attention_mask: torch.Tensor, scale: float | None = None,\n"
     "                       causal: bool = True) -> torch.Tensor:"),
    ("modules/attention.py",
     "(key, query, value,\n                                                                  "
     "attention_mask)",
     "(key, query, value,\n                                                                  "
     "attention_mask, None, True)"),
]
# (b) nanoGPT's causal-mask buffer, sized from max_position_embeddings.
CAUSAL_BUFFER = [
    ("modules/attention.py",
     "        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)\n",
     "        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)\n"
     "        n = config.max_position_embeddings\n"
     "        self.register_buffer(\"bias\", torch.ones(n, n, dtype=torch.bool).tril().view("
     "1, 1, n, n),\n                             persistent=False)\n"),
    ("modules/attention.py",
     "        causal = torch.ones(T_q, T_k, dtype=torch.bool, device=query.device).tril(T_k - T_q)\n"
     "        scores = scores.masked_fill",
     "        causal = self.bias[0, 0, T_k - T_q:T_k, :T_k]\n"
     "        scores = scores.masked_fill"),
]
# (c) dropout on the scores before the softmax: wrong.
DROPOUT_ON_SCORES = [
    ("modules/attention.py",
     "        probs = self.dropout(torch.softmax(scores, dim=-1))  # (B, H, T_q, T_k)",
     "        probs = torch.softmax(self.dropout(scores), dim=-1)  # (B, H, T_q, T_k)"),
]


def _case_name(test: dict) -> str:
    return test["extra_data"]["case"]


def _grade_edited(tmp_path: Path, edits: list[tuple[str, str, str]]) -> dict:
    folder = reference_submission(tmp_path / "submission")
    for rel, old, new in edits:
        mutate(folder, rel, old, new)
    data = grade(folder, predictions=False)
    assert_valid_results(data)
    return data


def _assert_loses_exactly(data: dict, lost: set[str]) -> dict[str, dict]:
    """Every case passes but those in `lost`, and the score is the total minus theirs."""
    cases = all_cases()
    failed = {_case_name(t): t for t in data["tests"] if t["status"] != "passed"}
    assert set(failed) == lost, {name: t["output"][:600] for name, t in failed.items()}
    total = sum(c.points for c in cases)
    assert data["score"] == pytest.approx(total - sum(c.points for c in cases if c.name in lost),
                                          abs=1e-9)
    return failed


def test_correct_starter_style_edits_lose_nothing(tmp_path):
    """One zip with all four correct edits (one grading run instead of four): an unused
    extra parameter, padding_idx on the word embedding, einops in the attention, and a
    stale models/base_gpt.py that would break every import if it were used."""
    folder = reference_submission(tmp_path / "submission")
    for rel, old, new in [EXTRA_PARAMETER, PADDING_IDX, *EINOPS]:
        mutate(folder, rel, old, new)
    archive = tmp_path / "submission.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for rel in assignment(REPO)["gradable"]:
            zipped.write(folder / rel, rel)
        zipped.writestr("models/base_gpt.py", "raise ImportError('the starter base_gpt')\n")
    data = grade(archive, predictions=False)
    assert_valid_results(data)
    _assert_loses_exactly(data, set())
    assert "ignored 1 file(s) that are not gradable: models/base_gpt.py" in data["output"]
    model = next(t for t in data["tests"] if _case_name(t) == "model/padded")
    assert "parameters the grader did not expect" in model["output"]
    assert "'pooler.bias', 'pooler.weight'" in model["output"]


def test_a_one_argument_embed_loses_exactly_the_positions_cases(tmp_path):
    failed = _assert_loses_exactly(_grade_edited(tmp_path, ONE_ARGUMENT_EMBED),
                                   {"embed/positions", "embed/visible_positions"})
    for test in failed.values():
        assert "TypeError" in test["output"]
        assert all_rules()["embed_position_ids"] in test["output"]


def test_exact_gelu_set_in_init_loses_exactly_the_whole_model_cases(tmp_path):
    whole_model = {"model/padded", "model/three_layers", "model/visible_padded",
                   "pretrained/from_pretrained"}
    failed = _assert_loses_exactly(_grade_edited(tmp_path, [EXACT_GELU_IN_INIT]), whole_model)
    cases = {c.name: c for c in all_cases()}
    for name, test in failed.items():
        assert f"outside atol={cases[name].atol:g} rtol={cases[name].rtol:g}" in test["output"]
        assert all_rules()["gelu_tanh"] in test["output"]


def test_adam_textbook_eps_loses_exactly_the_eps_placement_cases(tmp_path):
    failed = _assert_loses_exactly(_grade_edited(tmp_path, [TEXTBOOK_EPS]),
                                   {"optimizer/eps_placement", "optimizer/visible_eps_placement"})
    for test in failed.values():
        for rule in ("adam_moments", "bias_correction", "adam_eps"):
            assert all_rules()[rule] in test["output"]


def test_attention_with_extra_defaulted_arguments_loses_nothing(tmp_path):
    """The layer cases swap in the trusted attention; it takes the scaffold's two extra
    arguments, ignores them, and the feedback says so."""
    data = _grade_edited(tmp_path, ATTENTION_EXTRA_ARGUMENTS)
    _assert_loses_exactly(data, set())
    layer = [t for t in data["tests"] if t["extra_data"]["case"].startswith("layer/forward")]
    assert layer
    for test in layer:
        assert ("stood in for yours here: it accepted and ignored the extra argument(s) "
                "['scale', 'causal']") in test["output"], test["output"]


def test_every_trusted_stand_in_accepts_extra_defaulted_arguments(tmp_path):
    """The same for the stand-ins of `delta_weight` (under `merge`), of the DPO losses
    (under `dpo_loss`) and of `symmetric_kl` (under `smart_loss`)."""
    folder = reference_submission(tmp_path / "submission")
    mutate(folder, "modules/lora.py", "    def delta_weight(self) -> torch.Tensor:",
           "    def delta_weight(self, transpose: bool = False) -> torch.Tensor:")
    mutate(folder, "dpo.py", "def sigmoid_loss(logits: torch.Tensor, beta: float, "
           "label_smoothing: float) -> torch.Tensor:", "def sigmoid_loss(logits: torch.Tensor, "
           "beta: float, label_smoothing: float, *, scale: float = 1.0) -> torch.Tensor:")
    mutate(folder, "training/smart.py", "def symmetric_kl(input_logits: torch.Tensor, "
           "target_logits: torch.Tensor) -> torch.Tensor:", "def symmetric_kl(input_logits: "
           "torch.Tensor, target_logits: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:")
    data = grade(folder, only=["lora", "dpo", "smart"], predictions=False)
    assert data["tests"] and all(t["status"] == "passed" for t in data["tests"])
    notes = {t["extra_data"]["case"]: t["output"] for t in data["tests"]}
    assert "symmetric_kl stood in for yours here: it accepted and ignored the extra " \
           "argument(s) ['alpha']" in notes["smart/visible_smart_loss"]
    assert "LoRALinear.delta_weight stood in for yours here: it accepted and ignored the " \
           "extra argument(s) ['transpose']" in notes["lora/visible_merge"]
    assert "sigmoid_loss stood in for yours here: it accepted and ignored the extra " \
           "argument(s) ['scale']" in notes["dpo/visible_dpo_loss"]


def test_causal_mask_buffer_sized_from_the_config_loses_nothing(tmp_path):
    _assert_loses_exactly(_grade_edited(tmp_path, CAUSAL_BUFFER), set())


def test_dropout_on_the_scores_loses_exactly_the_attention_dropout_cases(tmp_path):
    dropout_cases = {c.name for c in all_cases() if "attn_dropout" in c.rules}
    assert {"attention/dropout", "attention/visible_dropout"} <= dropout_cases
    failed = _assert_loses_exactly(_grade_edited(tmp_path, DROPOUT_ON_SCORES), dropout_cases)
    for test in failed.values():
        assert "must be 0 or its eval-mode value / (1 - p)" in test["output"]
        assert all_rules()["attn_dropout"] in test["output"]


def test_gradable_files_are_exactly_the_files_with_fences():
    fenced = {rel for rel in HANDOUT_FILES if rel.endswith(".py")
              and not rel.startswith("autograder/") and BEGIN in (REPO / rel).read_text()}
    assert set(assignment(REPO)["gradable"]) == fenced


def test_every_case_configuration_is_one_gpt2_could_have():
    """The pad id inside the vocabulary, and every sequence within max_position_embeddings
    (a causal-mask buffer sized from the config must hold it)."""
    for case in all_cases():
        if case.producer in PRODUCERS:
            config = case_config(case.params)
            assert config.pad_token_id == config.vocab_size - 1, case.name
            for key in ("T", "T_q", "T_k"):
                assert case.params.get(key, 0) <= config.max_position_embeddings, case.name
    assert case_config({"T_k": 256}).max_position_embeddings == 256
    with pytest.raises(ValueError, match=r"pad_token_id=50256 is outside the vocabulary "
                                         r"\[0, 61\)"):
        GPT2Config(vocab_size=61, pad_token_id=50256)
    assert GPT2Config(vocab_size=61).pad_token_id == 60
    assert GPT2Config().pad_token_id == 50256

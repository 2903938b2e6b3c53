"""DPO (dpo.py) against transformers' GPT-2 and the published loss formulas; the pairs.

Tolerances: sequence_logprobs vs GPT2LMHeadModel at 1e-5 (fp32 model equivalence); the
losses vs the formulas computed with `math` in float64 at 1e-12; reward accuracy exactly.
"""

import copy
import math

import pytest
import torch
from transformers import GPT2LMHeadModel

import dpo
import evaluation
from data.loaders import ParaphraseExample
from data.pairs import (
    CORRUPTIONS,
    Pair,
    quora_pairs,
    read_pairs,
    sonnet_form_score,
    sonnet_pairs,
    split_sonnet,
    write_pairs,
)
from models.gpt2 import GPT2Model
from modules.lora import apply_lora
from tests.conftest import TINY

EOT = TINY["vocab_size"] - 1  # save_random_hf_checkpoint's end-of-text id


def test_sequence_logprobs_equals_transformers(make_checkpoint):
    folder = make_checkpoint(seed=5)
    ours = GPT2Model.from_pretrained(str(folder)).eval()
    theirs = GPT2LMHeadModel.from_pretrained(folder).eval()
    # (prompt, completion ending with EOT): rows of different lengths, right-padded.
    rows = [([5, 6, 7], [8, 9, EOT]), ([1], [2, 3, 4, 10, 11, EOT]), ([20, 21, 22, 23, 24], [EOT])]
    T = max(len(p) + len(c) for p, c in rows) + 1  # at least one pad column everywhere
    ids, mask, completion = (torch.zeros(len(rows), T, dtype=torch.long) for _ in range(3))
    for row, (prompt, comp) in enumerate(rows):
        ids[row, :len(prompt) + len(comp)] = torch.tensor(prompt + comp)
        mask[row, :len(prompt) + len(comp)] = 1
        completion[row, len(prompt):len(prompt) + len(comp)] = 1
    ids[:, -1] = 3  # padding holds a real token id: it must still not count
    with torch.no_grad():
        got = dpo.sequence_logprobs(ours, ids, mask, completion)
        got_average = dpo.sequence_logprobs(ours, ids, mask, completion, average=True)
        expected, counts = [], []
        for prompt, comp in rows:  # each row alone, unpadded, through transformers
            sequence = torch.tensor([prompt + comp])
            logps = torch.log_softmax(theirs(sequence).logits[0], dim=-1)  # (L, V)
            expected.append(sum(float(logps[len(prompt) + i - 1, token])
                                for i, token in enumerate(comp)))
            counts.append(len(comp))
    torch.testing.assert_close(got, torch.tensor(expected), rtol=0, atol=1e-5)
    torch.testing.assert_close(got_average, torch.tensor(expected) / torch.tensor(counts,
                               dtype=torch.float32), rtol=0, atol=1e-5)


POLICY = (-1.0, -3.0)  # chosen, rejected log-probabilities
REFERENCE = (-2.0, -2.5)


def formula(loss_type: str, beta: float, smoothing: float, reference_free: bool) -> float:
    """The published losses, in float64 with `math` (DPO eq. 7, cDPO, IPO eq. 17, SLiC)."""
    logits = (POLICY[0] - POLICY[1]) - (0 if reference_free else REFERENCE[0] - REFERENCE[1])

    def log_sigmoid(x: float) -> float:
        return -math.log1p(math.exp(-x))

    return {"sigmoid": -(1 - smoothing) * log_sigmoid(beta * logits)
            - smoothing * log_sigmoid(-beta * logits),
            "ipo": (logits - 1 / (2 * beta)) ** 2,
            "hinge": max(0.0, 1 - beta * logits)}[loss_type]


@pytest.mark.parametrize("loss_type, beta, smoothing, reference_free", [
    ("sigmoid", 0.1, 0.0, False), ("sigmoid", 0.5, 0.0, False), ("sigmoid", 0.1, 0.2, False),
    ("sigmoid", 0.1, 0.0, True), ("sigmoid", 0.3, 0.1, True), ("ipo", 0.1, 0.0, False),
    ("ipo", 0.5, 0.0, True), ("hinge", 0.1, 0.0, False), ("hinge", 2.0, 0.0, False),
    ("hinge", 0.1, 0.0, True)])
def test_dpo_loss_matches_the_formulas(loss_type, beta, smoothing, reference_free):
    tensors = [torch.tensor([value], dtype=torch.float64, requires_grad=True)
               for value in (*POLICY, *REFERENCE)]
    losses, chosen, rejected = dpo.dpo_loss(*tensors, beta=beta, label_smoothing=smoothing,
                                            loss_type=loss_type, reference_free=reference_free)
    assert losses.item() == pytest.approx(formula(loss_type, beta, smoothing, reference_free),
                                          abs=1e-12)
    assert chosen.item() == pytest.approx(beta * (POLICY[0] - REFERENCE[0]), abs=1e-12)
    assert rejected.item() == pytest.approx(beta * (POLICY[1] - REFERENCE[1]), abs=1e-12)
    assert not chosen.requires_grad and not rejected.requires_grad


def test_dpo_loss_worked_example_and_bad_arguments():
    losses, chosen, rejected = dpo.dpo_loss(*(torch.tensor([v]) for v in (*POLICY, *REFERENCE)))
    assert losses.item() == pytest.approx(0.62096, abs=1e-5)  # the docstring's example
    with pytest.raises(ValueError, match="loss_type 'kto'"):
        dpo.dpo_loss(*(torch.zeros(1),) * 4, loss_type="kto")
    with pytest.raises(ValueError, match="label_smoothing 0.1"):
        dpo.dpo_loss(*(torch.zeros(1),) * 4, loss_type="ipo", label_smoothing=0.1)


def token_pairs() -> tuple[list[Pair], "Tokens"]:
    """Four pairs over a tiny vocabulary, with a tokenizer that maps text to ids."""
    pairs = [Pair(f"p{i}", f"{i} {i + 1}", f"{i + 10} {i + 11} {i + 12}", f"{i + 30}", "test")
             for i in range(4)]
    return pairs, Tokens()


class Tokens:
    """A stand-in tokenizer: "3 4" -> [3, 4]."""
    eos_token_id = EOT

    def encode(self, text: str) -> list[int]:
        return [int(word) for word in text.split()]


def tiny_policy(lora: bool) -> GPT2Model:
    from config import GPT2Config
    torch.manual_seed(0)
    model = GPT2Model(GPT2Config(**TINY, hidden_dropout_prob=0.0,
                                 attention_probs_dropout_prob=0.0))
    if lora:
        apply_lora(model, ("query", "value", "interm_dense"), r=4, alpha=8)
    return model


@pytest.mark.parametrize("lora", [False, True])
def test_reward_accuracy_is_zero_at_step_zero_then_reaches_one(lora):
    pairs, tokens = token_pairs()
    batch = dpo.encode_pairs(pairs, tokens, max_length=TINY["max_position_embeddings"])
    assert batch["input_ids"].shape == (8, 6)
    assert batch["completion_mask"][4].tolist() == [0, 0, 1, 1, 0, 0]  # rejected "30" + EOT
    policy = tiny_policy(lora)
    reference = None if lora else copy.deepcopy(policy).requires_grad_(False)
    reference_logps = dpo.reference_logprobs(policy, reference, batch)
    parameters = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=1e-2 if lora else 1e-3)
    history = []
    for _ in range(40):
        loss, metrics = dpo.dpo_step(policy, batch, reference_logps)
        history.append(metrics)
        if metrics["reward_accuracy"] == 1.0:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert history[0]["reward_accuracy"] == 0.0 and history[0]["margin"] == 0.0
    assert history[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert history[-1]["reward_accuracy"] == 1.0, history[-1]
    if lora:  # the reference really is the adapters-off policy: unchanged by training
        torch.testing.assert_close(dpo.reference_logprobs(policy, None, batch),
                                   reference_logps, rtol=0, atol=0)


@pytest.fixture(scope="module")
def sonnets(data_dir):
    return evaluation.read_sonnets(data_dir / "cs224n" / "sonnets.txt")


def test_sonnet_pairs_are_deterministic_and_ranked(sonnets, tmp_path):
    pairs = sonnet_pairs(sonnets, seed=1)
    assert pairs == sonnet_pairs(sonnets, seed=1)
    assert pairs != sonnet_pairs(sonnets, seed=2)
    assert sonnet_pairs(sonnets[::-1], seed=1) == pairs[::-1]  # each pair from its own seed
    assert len(pairs) == len(sonnets) and {p.rule for p in pairs} == set(CORRUPTIONS)
    for pair, (_, text) in zip(pairs, sonnets, strict=True):
        assert pair.prompt + pair.chosen == text and pair.prompt.count("\n") == 3
        assert sonnet_form_score(pair.prompt + pair.rejected) < sonnet_form_score(text)
    write_pairs(tmp_path / "pairs.jsonl", pairs)
    assert read_pairs(tmp_path / "pairs.jsonl") == pairs
    assert "thou" in (tmp_path / "pairs.jsonl").read_text(encoding="utf-8")


def test_model_samples_are_used_when_they_rank_lower(sonnets):
    number, text = sonnets[0]
    prompt, chosen = split_sonnet(text)
    worse = "And so it goes."
    pairs = sonnet_pairs([(number, text)], seed=0, samples={number: worse})
    assert pairs == [Pair(f"sonnet-{number}", prompt, chosen, worse, "model_sample")]
    better = sonnet_pairs([(number, text)], seed=0, samples={number: chosen})
    assert better[0].rule in CORRUPTIONS  # the sample does not rank lower: a corruption


def test_sonnet_form_score_worked_examples():
    ends = ["day", "night", "way", "light", "tree", "cold", "free", "old", "rain", "sun",
            "pain", "run", "ring", "sing"]  # ABAB CDCD EFEF GG
    lines = [f"the cat sat on the mat and then the {end}" for end in ends]  # 10 syllables
    assert sonnet_form_score("\n".join(lines)) == pytest.approx(1.0, abs=1e-12)
    seven = "\n".join(lines[:7])  # pairs (0, 2), (1, 3), (4, 6) of 7 are complete
    assert sonnet_form_score(seven) == pytest.approx((0.5 + 3 / 7 + 1) / 3, abs=1e-12)
    assert sonnet_form_score("") == 0.0


def test_quora_pairs_chose_the_right_answer():
    examples = [ParaphraseExample("a", "Q1?", "Q2?", 1), ParaphraseExample("b", "X?", "Y?", 0)]
    pairs = quora_pairs(examples)
    assert [(p.chosen, p.rejected) for p in pairs] == [(" yes", " no"), (" no", " yes")]
    assert pairs[0].prompt.endswith("Answer:") and '"Q1?"' in pairs[0].prompt
    with pytest.raises(ValueError, match="quora example c has no label"):
        quora_pairs([ParaphraseExample("c", "X?", "Y?", None)])

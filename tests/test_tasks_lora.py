"""The three Part 2 scripts with `--peft lora`, and DPO from the sonnet script's checkpoint.

Same harness and bound as tests/test_tasks.py (a subprocess under 60 s of CPU time each);
checkpoints must hold the adapters and the task head only.
"""

import json
import re

import torch

import evaluation
from tests.test_tasks import SIZES, run_script, subset, tokenizer  # noqa: F401  (fixtures)

LORA = ["--peft", "lora", "--lora_r", "4", "--lora_alpha", "8", "--lora_targets", "query",
        "value", "interm_dense"]
ADAPTERS = ("lora_A", "lora_B")


def lora_checkpoint_keys(path) -> set[str]:
    state = torch.load(path, map_location="cpu")
    assert state["peft"] == {"method": "lora", "targets": ["query", "value", "interm_dense"],
                             "r": 4, "alpha": 8.0, "dropout": 0.0}
    return set(state["state_dict"])


def trainable_line(out: str, name: str) -> tuple[int, int]:
    match = re.search(rf"\[{name}\] peft lora on 6 layers: ([\d,]+) of ([\d,]+) parameters "
                      r"train \((\d+\.\d+)%\)", out)
    assert match, out
    trainable, total = (int(match.group(i).replace(",", "")) for i in (1, 2))
    assert float(match.group(3)) == round(100 * trainable / total, 3)
    return trainable, total


def test_classifier_with_lora(subset, make_checkpoint, tmp_path):
    out = run_script("classifier.py", subset, make_checkpoint(**SIZES), tmp_path, "--task", "sst",
                     "--epochs", "1", "--max_train_examples", "32", "--max_length", "128",
                     "--checkpoint_dir", str(tmp_path / "out"), *LORA)
    D, I = SIZES["hidden_size"], SIZES["intermediate_size"]
    adapters = 2 * (4 * (D + D) * 2 + 4 * (D + I))  # 2 layers: query, value, interm_dense
    assert trainable_line(out, "sst")[0] == adapters + 5 * D + 5  # plus the 5-class head
    keys = lora_checkpoint_keys(tmp_path / "out" / "sst-classifier.pt")
    assert keys >= {"classifier.weight", "classifier.bias"}
    assert all(k.endswith(ADAPTERS) for k in keys - {"classifier.weight", "classifier.bias"})
    assert len(keys) == 2 + 2 * 3 * 2
    predictions, errors = evaluation.read_predictions(tmp_path / "predictions" /
                                                      "sst-test-output.csv")
    assert errors == [] and predictions


def test_paraphrase_with_lora(subset, make_checkpoint, tmp_path):
    out = run_script("paraphrase_detection.py", subset, make_checkpoint(**SIZES), tmp_path,
                     "--epochs", "1", "--max_train_examples", "32",
                     "--checkpoint_dir", str(tmp_path / "out"), *LORA)
    trainable_line(out, "para")
    keys = lora_checkpoint_keys(tmp_path / "out" / "paraphrase.pt")
    assert len(keys) == 2 * 3 * 2 and all(k.endswith(ADAPTERS) for k in keys)
    assert "[para] epoch 1/1" in out


def test_sonnet_with_lora_then_dpo(subset, make_checkpoint, tmp_path):
    checkpoint = make_checkpoint(**SIZES)
    out = run_script("sonnet_generation.py", subset, checkpoint, tmp_path, "--epochs", "1",
                     "--max_train_examples", "8", "--max_new_tokens", "16",
                     "--checkpoint_dir", str(tmp_path / "out"), *LORA)
    trainable_line(out, "sonnet")
    keys = lora_checkpoint_keys(tmp_path / "out" / "sonnet.pt")
    assert len(keys) == 2 * 3 * 2 and all(k.endswith(ADAPTERS) for k in keys)
    assert "dev chrF" in out

    out = run_script("dpo.py", subset, checkpoint, tmp_path, "--task", "sonnet",
                     "--init_checkpoint", str(tmp_path / "out" / "sonnet.pt"), "--peft", "lora",
                     "--precompute_reference", "--max_train_examples", "8", "--lr", "1e-2",
                     "--max_new_tokens", "16")
    log = tmp_path / "predictions" / "dpo-sonnet-log.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(rows) == 2 and rows[0]["reward_accuracy"] == 0.0
    assert (tmp_path / "predictions" / "dpo-sonnet-log.png").stat().st_size > 0
    for key in ("dev_preference_accuracy", "dev_chrf", "dev_sonnet_form"):
        assert re.search(rf"\[dpo\] {key}: before [\d.]+, after [\d.]+", out), out


def test_dpo_quora_with_a_frozen_copy_as_reference(subset, make_checkpoint, tmp_path):
    out = run_script("dpo.py", subset, make_checkpoint(**SIZES), tmp_path, "--task", "quora",
                     "--max_train_examples", "8", "--max_dev_pairs", "8", "--loss_type", "ipo",
                     "--lr", "1e-3")
    assert "[dpo] peft none: " in out and "[dpo] step 2: loss" in out
    assert re.search(r"\[dpo\] dev_preference_accuracy: before [\d.]+, after [\d.]+", out)
    pairs = (tmp_path / "predictions" / "dpo-quora-train-pairs.jsonl").read_text().splitlines()
    assert len(pairs) == 8 and all(json.loads(p)["rule"] == "wrong_answer" for p in pairs)

"""training/harness.py's KitLM against lm-evaluation-harness's own HFLM on the exported
twin (models/export.py to_hf) of the same random weights, the kit's offline tasks
(evals/), and evaluate_lm.py --harness.  Offline: tiny models made here, the GPT-2
tokenizer from the course data.

Tolerance: log-likelihoods agree to 1e-4 absolute (fp32 forward passes on different
kernels, summed over up to a hundred tokens); accuracies and greedy flags are equal.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"

from lm_eval import simple_evaluate  # noqa: E402  (after HF_HUB_OFFLINE)
from lm_eval.api.instance import Instance  # noqa: E402

import pretrain  # noqa: E402
from config import GPT2Config  # noqa: E402
from data import prepare_lm  # noqa: E402
from evals.make_lastword import main as make_lastword  # noqa: E402
from evaluate_lm import evaluate_harness, harness_tasks  # noqa: E402
from evaluate_lm import main as evaluate_lm  # noqa: E402
from models.export import to_hf  # noqa: E402
from models.gpt2 import GPT2Model  # noqa: E402
from training.harness import KitLM  # noqa: E402
from training.lm_data import load_tokenizer_dir  # noqa: E402

GPT2_VOCAB = 50257
ATOL = 1e-4


@pytest.fixture(scope="module")
def tokenizer_dir(data_dir):
    return data_dir / "gpt2-tokenizer"


@pytest.fixture(scope="module")
def hf_folder(make_checkpoint):
    """A random Hugging Face GPT-2 with the GPT-2 vocabulary and a 64-token context."""
    return make_checkpoint(seed=5, vocab_size=GPT2_VOCAB)


@pytest.fixture(scope="module")
def kit_lm(hf_folder, tokenizer_dir):
    model = GPT2Model.from_pretrained(str(hf_folder))
    return KitLM(model, load_tokenizer_dir(tokenizer_dir), batch_size=3)


@pytest.fixture(scope="module")
def hf_lm(kit_lm, tokenizer_dir):
    """The harness's HFLM on the transformers twin of kit_lm's weights."""
    from lm_eval.models.huggingface import HFLM
    from transformers import GPT2TokenizerFast

    twin = to_hf(kit_lm.model, bos_token_id=GPT2_VOCAB - 1, eos_token_id=GPT2_VOCAB - 1)
    tokenizer = GPT2TokenizerFast.from_pretrained(tokenizer_dir)
    return HFLM(pretrained=twin, tokenizer=tokenizer, batch_size=2, device="cpu")


@pytest.fixture(scope="module")
def text_file(tmp_path_factory, data_dir):
    """About 3,000 characters of Tiny Shakespeare (several 64-token windows)."""
    text = (data_dir / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")[:3000]
    path = tmp_path_factory.mktemp("text") / "sample.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lastword_file(text_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("lastword") / "lastword.jsonl"
    make_lastword([str(text_file), "--out", str(out), "--words", "30"])
    return out


def requests(kind: str, args: list[tuple]) -> list[Instance]:
    return [Instance(request_type=kind, doc={}, arguments=a, idx=i) for i, a in enumerate(args)]


def test_loglikelihood_equals_hflm(kit_lm, hf_lm, text_file):
    text = text_file.read_text(encoding="utf-8")
    pairs = [("", "First Citizen"), ("Before we proceed", " any further"),
             ("Speak, speak. ", "You are all resolved"),  # trailing space moves over
             (text[:600], text[600:700]),  # longer than 64 tokens: truncated on the left
             ("We are accounted poor", " citizens")]
    ours = kit_lm.loglikelihood(requests("loglikelihood", pairs), disable_tqdm=True)
    theirs = hf_lm.loglikelihood(requests("loglikelihood", pairs), disable_tqdm=True)
    for (our_ll, our_greedy), (their_ll, their_greedy) in zip(ours, theirs, strict=True):
        assert our_ll == pytest.approx(their_ll, abs=ATOL)
        assert our_greedy == their_greedy


def test_rolling_equals_hflm(kit_lm, hf_lm, text_file):
    texts = [(text_file.read_text(encoding="utf-8")[:1200],), ("A short line.",)]
    ours = kit_lm.loglikelihood_rolling(requests("loglikelihood_rolling", texts), True)
    theirs = hf_lm.loglikelihood_rolling(requests("loglikelihood_rolling", texts), True)
    assert ours == pytest.approx(theirs, abs=ATOL)


def test_generate_until_equals_hflm(kit_lm, hf_lm):
    long_context = "First Citizen: " * 40  # past 64 tokens: keeps its last 64 - 6
    args = [("First Citizen:\nBefore we", {"until": ["\n"], "max_gen_toks": 6}),
            ("Speak", {"until": [" the"], "max_gen_toks": 4, "do_sample": False}),
            ("You are all resolved", {"until": ["\n"], "max_gen_toks": 6}),
            (long_context, {"until": ["\n"], "max_gen_toks": 6, "temperature": 0.0})]
    ours = kit_lm.generate_until(requests("generate_until", args), disable_tqdm=True)
    theirs = hf_lm.generate_until(requests("generate_until", args), disable_tqdm=True)
    assert ours == theirs
    with pytest.raises(ValueError, match=r"kwargs \['num_beams'\]"):
        kit_lm.generate_until(requests("generate_until", [("Speak", {"num_beams": 2})]), True)


def test_harness_include_adds_task_yamls(tmp_path):
    """A folder of YAMLs (--harness_include) joins evals/ without indexing the harness's
    own tasks."""
    from evals import TASKS_DIR

    (tmp_path / "mine.yaml").write_text(f"include: {TASKS_DIR / 'text.yaml'}\ntask: my_text\n",
                                        encoding="utf-8")
    manager, tasks = harness_tasks(["my_text", "kit_text"], str(tmp_path), {})
    assert sorted(tasks) == ["kit_text", "my_text"]
    assert {"my_text", "kit_text", "kit_lastword"} <= set(manager.all_tasks)
    assert "hellaswag" not in manager.all_tasks


def test_offline_tasks_equal_hflm(kit_lm, hf_lm, text_file, lastword_file):
    """kit_lastword and kit_text through simple_evaluate: the same accuracies and
    perplexities from both models."""
    metadata = {"lastword": str(lastword_file), "text": str(text_file)}
    manager, tasks = harness_tasks(["kit_*"], None, metadata)
    assert tasks == ["kit_lastword", "kit_text"]
    results = [simple_evaluate(lm, tasks=tasks, limit=8, log_samples=False,
                               task_manager=manager)["results"] for lm in (kit_lm, hf_lm)]
    ours, theirs = results
    assert ours["kit_lastword"]["acc,none"] == theirs["kit_lastword"]["acc,none"]
    for task, metric in [("kit_lastword", "perplexity,none"), ("kit_text", "bits_per_byte,none"),
                         ("kit_text", "word_perplexity,none")]:
        assert ours[task][metric] == pytest.approx(theirs[task][metric], rel=ATOL)
    assert 0 < ours["kit_text"]["bits_per_byte,none"] < 30


def test_any_length_positions_see_the_whole_context():
    """ALiBi has no context limit: a context past the trained length is not truncated,
    and its log-likelihood is the full sequence's, from one forward pass."""
    torch.manual_seed(0)
    config = GPT2Config(num_hidden_layers=2, num_attention_heads=2, hidden_size=32,
                        intermediate_size=64, vocab_size=300, max_position_embeddings=16,
                        position_encoding="alibi")
    model = GPT2Model(config).eval()
    from bpe import Tokenizer
    from training.lm_data import LMTokenizer

    lm = KitLM(model, LMTokenizer(Tokenizer({i: bytes([i]) for i in range(256)}, []), None))
    assert lm.max_length is None and lm.eot_token_id == ord("\n")
    context, continuation = list(b"a long context, longer than sixteen bytes"), list(b" ok")
    (ll, _), = lm.continuation_logprobs([(context, continuation)])
    ids = torch.tensor([context + continuation])
    with torch.no_grad():
        hidden = model(ids[:, :-1], torch.ones_like(ids[:, :-1]))["last_hidden_state"]
        logprobs = torch.log_softmax(model.hidden_state_to_token(hidden), dim=-1)[0]
    expected = sum(float(logprobs[len(context) - 1 + k, t]) for k, t in enumerate(continuation))
    assert ll == pytest.approx(expected, abs=ATOL)
    with pytest.raises(ValueError, match="positive integer"):
        KitLM(model, lm.lm_tokenizer, max_length=0)


def test_learned_positions_refuse_a_longer_max_length(kit_lm):
    with pytest.raises(ValueError, match=r"max_length 65 is outside \[1, 64\]"):
        KitLM(kit_lm.model, kit_lm.lm_tokenizer, max_length=65)
    with pytest.raises(ValueError, match="continuation of 65 tokens does not fit the context "
                                         "of 64"):
        kit_lm.continuation_logprobs([([1], list(range(65)))])


def test_evaluate_lm_harness_on_a_rope_checkpoint_past_its_length(text_file, lastword_file,
                                                                  tmp_path):
    """A pretrain.py checkpoint (rope, block 32, bytes tokenizer: end-of-text 256) through
    evaluate_lm.py --harness with its corpus' tokenizer, in 96-token passes; --json holds
    the harness's results JSON."""
    prepare_lm.main(["--input", str(text_file), "--tokenizer", "bytes",
                     "--out_dir", str(tmp_path / "chars")])
    pretrain.main(["--data_dir", str(tmp_path / "chars"), "--out_dir", str(tmp_path / "run"),
                   "--n_layer", "1", "--n_head", "2", "--n_embd", "32", "--batch_size", "2",
                   "--block_size", "32", "--max_iters", "2", "--warmup_iters", "1",
                   "--eval_interval", "2", "--eval_iters", "1", "--num_samples", "0",
                   "--position_encoding", "rope"])
    out = tmp_path / "results.json"
    evaluate_lm(["--model", str(tmp_path / "run"), "--harness", "kit_text,kit_lastword",
                 "--text", str(text_file), "--block_size", "96", "--device", "cpu",
                 "--harness_metadata", json.dumps({"lastword": str(lastword_file)}),
                 "--harness_limit", "4", "--json", str(out)])
    written = json.loads(out.read_text(encoding="utf-8"))
    assert set(written["results"]) == {"kit_text", "kit_lastword"}
    assert 0 < written["results"]["kit_text"]["bits_per_byte,none"] < 30
    assert written["configs"]["kit_lastword"]["output_type"] == "loglikelihood"


@pytest.mark.parametrize("extra, message", [
    ([], "pass --text FILE or --data_dir DIR to score, or --harness TASKS"),
    (["--harness", "kit_lastword"], "make_lastword.py writes; pass it as --harness_metadata"),
    (["--harness", "kit_text"], "kit_text scores a text file; pass it as --text FILE"),
    (["--harness", "kit_text", "--data_dir", "x"], "--harness scores its tasks, not a"),
    (["--harness", "kit_text", "--harness_metadata", "[1]"], "must be a JSON object"),
    (["--harness", "kit_text", "--harness_metadata", "{x"], "not JSON (Expecting property"),
    (["--harness", " , "], "--harness needs task names"),
])
def test_harness_flag_errors(hf_folder, tokenizer_dir, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        evaluate_lm(["--model", str(hf_folder), "--tokenizer", str(tokenizer_dir), *extra])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_make_lastword_rows(lastword_file, kit_lm, tmp_path, capsys):
    rows = [json.loads(line) for line in lastword_file.read_text(encoding="utf-8").splitlines()]
    assert len(rows) > 8 and all(r["text"].split(" ")[-1].isalpha() for r in rows)
    assert all(len(r["text"].split(" ")) >= 30 for r in rows)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "two words"}\n{"txt": 1}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: expected"):
        evaluate_harness(kit_lm.model, kit_lm.lm_tokenizer, ["kit_lastword"],
                         metadata={"lastword": str(bad)})
    with pytest.raises(SystemExit):
        make_lastword([str(lastword_file), "--out", str(tmp_path / "x.jsonl"), "--words", "1"])
    assert "at least 2 words" in capsys.readouterr().err

"""export_hf.py and models/export.py against transformers, long contexts, and sample.py.

Tiny pretrain.py runs on a slice of Tiny Shakespeare (bytes tokenizer) are exported and
loaded back with AutoModelForCausalLM / AutoTokenizer; fp32 logits are compared at 1e-5
(absolute, on logits of order 1).  ALiBi at 4x and 8x its training length is compared with
the model's own full forward at 1e-5 relative.  Greedy sampling is compared token for
token with transformers' generate(do_sample=False) on the exported twin.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import export_hf
import pretrain
import sample
from config import GPT2Config
from data import prepare_lm
from evaluate_lm import main as evaluate_lm
from models.export import export_problems, to_hf
from models.generate import generate
from models.gpt2 import GPT2Model
from training.checkpoint import model_from_checkpoint
from training.lm_data import load_lm_tokenizer, open_split

ATOL = 1e-5
TINY = ["--n_layer", "2", "--n_head", "2", "--n_embd", "32", "--batch_size", "4",
        "--max_iters", "3", "--warmup_iters", "1", "--eval_interval", "3", "--eval_iters", "1",
        "--log_interval", "1", "--num_samples", "0"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, data_dir) -> Path:
    """The first 12,000 characters of Tiny Shakespeare, prepared with the bytes tokenizer."""
    folder = tmp_path_factory.mktemp("export_corpus")
    text = (data_dir / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")[:12000]
    (folder / "input.txt").write_text(text, encoding="utf-8")
    prepare_lm.main(["--input", str(folder / "input.txt"), "--tokenizer", "bytes",
                     "--out_dir", str(folder / "chars")])
    return folder / "chars"


@pytest.fixture(scope="module")
def runs(corpus, tmp_path_factory):
    """name -> the out folder of a 3-step pretrain.py run: learned positions (block 32),
    rope with half its channels turned (block 32), ALiBi (block 64)."""
    root = tmp_path_factory.mktemp("export_runs")
    flags = {"learned": ["--block_size", "32"],
             "rope": ["--block_size", "32", "--position_encoding", "rope",
                      "--rotary_fraction", "0.5", "--rope_theta", "500"],
             "alibi": ["--block_size", "64", "--position_encoding", "alibi"]}
    for name, extra in flags.items():
        pretrain.main(["--data_dir", str(corpus), "--out_dir", str(root / name), *TINY, *extra])
    return {name: root / name for name in flags}


@pytest.fixture(scope="module")
def exported(runs, tmp_path_factory):
    """name -> the export_hf.py folder of the learned and rope runs."""
    root = tmp_path_factory.mktemp("exported")
    for name in ("learned", "rope"):
        export_hf.main([str(runs[name]), str(root / name)])
    return {name: root / name for name in ("learned", "rope")}


def our_logits(model: GPT2Model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        hidden = model.eval()(ids, torch.ones_like(ids))["last_hidden_state"]
        return model.hidden_state_to_token(hidden)  # (B, T, V)


@pytest.mark.parametrize("name, hf_class", [("learned", "GPT2LMHeadModel"),
                                            ("rope", "GPTNeoXForCausalLM")])
def test_export_loads_in_transformers_with_equal_logits(runs, exported, name, hf_class):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ours = model_from_checkpoint(runs[name] / "ckpt.pt")
    hf = AutoModelForCausalLM.from_pretrained(exported[name]).eval()
    assert type(hf).__name__ == hf_class
    tokenizer = AutoTokenizer.from_pretrained(exported[name])
    ids = torch.tensor([tokenizer.encode("ROMEO:\nWhat light breaks")])
    assert ids[0].tolist() == list(b"ROMEO:\nWhat light breaks")  # bytes
    with torch.no_grad():
        theirs = hf(ids).logits
    assert torch.allclose(theirs, our_logits(ours, ids), atol=ATOL, rtol=0)
    assert hf.config.pad_token_id == ours.config.pad_token_id == 256  # bytes: eot 256 pads
    assert hf.config.eos_token_id == hf.config.bos_token_id == 256 == tokenizer.eos_token_id
    assert tokenizer.pad_token_id == 256  # the model's pad id, the tokenizer's pad token
    out = hf.generate(ids[:, :6], max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert out.shape == (1, 11)


def test_rope_export_round_trips_through_from_pretrained(runs, exported):
    """GPT2Model.from_pretrained reads the GPT-NeoX folder back as position_encoding="rope"."""
    ours = model_from_checkpoint(runs["rope"] / "ckpt.pt")
    back = GPT2Model.from_pretrained(str(exported["rope"]))
    assert (back.config.position_encoding, back.config.rotary_fraction,
            back.config.rope_theta) == ("rope", 0.5, 500.0)
    ids = torch.randint(0, 256, (2, 30), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(our_logits(back, ids), our_logits(ours, ids), atol=ATOL, rtol=0)


def random_model(**switches) -> GPT2Model:
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=50, max_position_embeddings=16, hidden_size=16,
                        num_hidden_layers=1, num_attention_heads=2, **switches)
    return GPT2Model(config)


@pytest.mark.parametrize("switches", [{"bias": False, "tie_word_embeddings": False},
                                      {"position_encoding": "none"},
                                      {"position_encoding": "rope", "bias": False},
                                      {"mlp": "gelu"},
                                      {"position_encoding": "rope", "mlp": "gelu"}])
def test_to_hf_exports_zero_biases_untied_heads_no_positions_and_the_exact_gelu(switches):
    model = random_model(**switches)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
    twin = to_hf(model, eos_token_id=7)
    ids = torch.randint(0, 50, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(twin(ids).logits, our_logits(model, ids), atol=ATOL, rtol=0)
    assert twin.config.eos_token_id == 7


@pytest.mark.parametrize("position_encoding", ["learned", "rope"])
def test_an_exact_gelu_model_round_trips_through_its_export(position_encoding, tmp_path):
    """mlp="gelu" exports as transformers' "gelu" and loads back as mlp="gelu", same logits."""
    model = random_model(mlp="gelu", position_encoding=position_encoding)
    twin = to_hf(model)
    field = "activation_function" if position_encoding == "learned" else "hidden_act"
    assert getattr(twin.config, field) == "gelu"
    twin.save_pretrained(tmp_path)
    back = GPT2Model.from_pretrained(str(tmp_path))
    assert back.config.mlp == "gelu"
    ids = torch.randint(0, 50, (2, 16), generator=torch.Generator().manual_seed(1))
    assert torch.allclose(our_logits(back, ids), our_logits(model, ids), atol=ATOL, rtol=0)


@pytest.mark.parametrize("switches, named", [
    ({"position_encoding": "alibi"}, "position_encoding='alibi'"),
    ({"mlp": "swiglu"}, "mlp='swiglu'"),
    ({"attention_variant": "sigmoid"}, "attention_variant='sigmoid'"),
    ({"attention_variant": "vbias"}, "attention_variant='vbias'"),
    ({"qk_norm": True}, "qk_norm=True"),
    ({"position_encoding": "rope", "rope_layout": "interleaved"}, "rope_layout='interleaved'"),
])
def test_switches_no_transformers_class_computes_are_refused(switches, named):
    model = random_model(**switches)
    with pytest.raises(ValueError, match="no transformers class computes this model") as error:
        to_hf(model)
    assert named in str(error.value)
    assert export_problems(random_model().config) == []


def test_export_hf_refuses_an_alibi_checkpoint_with_the_reason(runs, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        export_hf.main([str(runs["alibi"]), str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "position_encoding='alibi'" in err and "BLOOM" in err
    assert not (tmp_path / "out").exists()


def direct_nll(model: GPT2Model, ids: list[int], block: int) -> float:
    """Summed NLL of disjoint windows of `block` tokens, each one full forward pass."""
    total = 0.0
    for begin in range(0, len(ids), block):
        window = torch.tensor([ids[begin:begin + block]])
        if window.shape[1] < 2:
            break
        logits = our_logits(model, window)[0, :-1]
        total += float(F.cross_entropy(logits, window[0, 1:], reduction="sum").double())
    return total


@pytest.mark.parametrize("block", [256, 512])
def test_alibi_scores_past_its_training_length(runs, corpus, block):
    """Trained at 64; scored at 4x and 8x, equal to the model's own full forward."""
    model = model_from_checkpoint(runs["alibi"] / "ckpt.pt")
    ids = [int(t) for t in open_split(corpus, "val")]
    result = evaluate_lm(["--model", str(runs["alibi"]), "--data_dir", str(corpus),
                          "--split", "val", "--block_size", str(block), "--stride", str(block),
                          "--device", "cpu"])
    assert result["block_size"] == block and result["split"] == "val"
    assert result["nll_nats"] == pytest.approx(direct_nll(model, ids, block), rel=1e-5)
    assert result["bits_per_byte"] == pytest.approx(
        result["nll_nats"] / math.log(2) / result["bytes"], rel=1e-12)


def test_learned_positions_refuse_a_longer_block_naming_the_trained_length(runs, corpus,
                                                                          capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate_lm(["--model", str(runs["learned"]), "--data_dir", str(corpus),
                     "--block_size", "256", "--device", "cpu"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "block_size=256 exceeds the model's context 32" in err
    assert "trained for 32 tokens" in err


def test_learned_generation_slides_its_window_and_says_so_once(runs, caplog):
    model = model_from_checkpoint(runs["learned"] / "ckpt.pt").eval()
    prompt = list(b"ROMEO:\nO, she doth teach")  # 24 tokens; the window is 32
    with caplog.at_level(logging.WARNING, logger="models.generate"):
        new = generate(model, [prompt], max_new_tokens=20, eos_id=None)[0]
    assert len(new) == 20
    assert sum("window slides" in r.getMessage() for r in caplog.records) == 1
    expected, sequence = [], list(prompt)
    for _ in range(20):  # nanoGPT's loop: the last 32 tokens, one full forward each
        window = torch.tensor([sequence[-32:]])
        token = int(our_logits(model, window)[0, -1].argmax())
        expected.append(token)
        sequence.append(token)
    assert new == expected


def test_alibi_generates_past_its_training_length(runs):
    model = model_from_checkpoint(runs["alibi"] / "ckpt.pt").eval()
    prompt = list(b"KING:\n")
    kwargs = dict(max_new_tokens=80, eos_id=None, temperature=1.0, seed=3)  # 86 > 64
    cached = generate(model, [prompt], **kwargs)
    assert cached == generate(model, [prompt], use_cache=False, **kwargs)
    assert len(cached[0]) == 80


def run_sample(spec_flags: list[str], capsys, *flags: str) -> list[str]:
    samples = sample.main([*spec_flags, "--device", "cpu", *flags])
    assert capsys.readouterr().out.count(sample.SEPARATOR) == len(samples)
    return samples


def test_sample_is_reproducible_from_a_checkpoint_with_a_prompt(runs, tmp_path, capsys):
    out_dir = ["--out_dir", str(runs["learned"])]
    settings = ["--start", "ROMEO:", "--num_samples", "2", "--max_new_tokens", "12",
                "--temperature", "1.0", "--top_k", "20", "--top_p", "0.9"]
    first = run_sample(out_dir, capsys, *settings, "--seed", "5")
    assert len(first) == 2 and all(s.startswith("ROMEO:") for s in first)
    # bytes: one character per token, up to 12 (fewer when the end-of-text id 256 ends one)
    assert all(len("ROMEO:") < len(s) <= len("ROMEO:") + 12 for s in first)
    assert run_sample(out_dir, capsys, *settings, "--seed", "5") == first
    assert run_sample(out_dir, capsys, *settings, "--seed", "6") != first
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("ROMEO:", encoding="utf-8")
    from_file = run_sample(["--checkpoint", str(runs["learned"] / "ckpt.pt")], capsys,
                           *settings, "--seed", "5", "--start", f"FILE:{prompt}")
    assert from_file == first


@pytest.mark.parametrize("name", ["learned", "rope"])
def test_greedy_sample_equals_transformers_generate_on_the_twin(runs, exported, corpus, capsys,
                                                               name):
    from transformers import AutoModelForCausalLM

    # 14 + 18 tokens fill the context of 32: transformers' GPT-2 cannot slide past it
    greedy = ["--start", "First Citizen:", "--num_samples", "1", "--max_new_tokens", "18"]
    ours = run_sample(["--out_dir", str(runs[name])], capsys, *greedy, "--temperature", "0")
    assert run_sample(["--out_dir", str(runs[name])], capsys, *greedy, "--top_k", "1") == ours
    twin = run_sample(["--checkpoint", str(exported[name])], capsys, *greedy,
                      "--temperature", "0")
    hf = AutoModelForCausalLM.from_pretrained(exported[name]).eval()
    ids = torch.tensor([list(b"First Citizen:")])
    expected = hf.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                           max_new_tokens=18, min_new_tokens=18, pad_token_id=0)[0].tolist()
    assert ours == [load_lm_tokenizer(corpus).decode(expected)]
    assert twin == ours


def test_sample_errors_name_the_flag(runs, tmp_path, capsys):
    for flags, message in [(["--out_dir", str(tmp_path / "none")], "no such checkpoint"),
                           (["--out_dir", str(runs["learned"]), "--start", "FILE:/no/file"],
                            "no such file /no/file"),
                           (["--out_dir", str(runs["learned"]), "--start", ""],
                            "--start is empty")]:
        with pytest.raises(SystemExit):
            sample.main([*flags, "--device", "cpu"])
        assert message in capsys.readouterr().err


@pytest.mark.parametrize("device", ["tpu", "cuda:99"])
def test_sample_refuses_a_device_this_machine_lacks(device, capsys):
    with pytest.raises(SystemExit) as exit_info:
        sample.main(["--device", device])
    assert exit_info.value.code == 2
    assert f"argument --device: {device!r} is not a device this machine has (it has cpu" in \
        capsys.readouterr().err


def test_task_scripts_take_a_pretrain_checkpoint_as_model_path(runs, tmp_path, data_dir):
    """--model_path out/DIR loads a pretrain.py run (a character model too, read with its
    run's bytes tokenizer); one whose vocabulary is smaller than a --tokenizer given (GPT-2's)
    is refused naming both sizes."""
    import argparse

    from training.args import add_model_args
    from training.loading import load_gpt2

    parser = argparse.ArgumentParser()
    add_model_args(parser)
    torch.manual_seed(0)
    model = GPT2Model(GPT2Config(vocab_size=50257, max_position_embeddings=16, hidden_size=8,
                                 num_hidden_layers=1, num_attention_heads=2))
    torch.save({"model": model.state_dict(), "model_args": dataclasses.asdict(model.config)},
               tmp_path / "ckpt.pt")
    loaded = load_gpt2(parser.parse_args(["--model_path", str(tmp_path)]))
    assert all(torch.equal(t, loaded.state_dict()[k]) for k, t in model.state_dict().items())
    chars = load_gpt2(parser.parse_args(["--model_path", str(runs["learned"])]))
    assert chars.config.vocab_size == 257
    gpt2 = str(data_dir / "gpt2-tokenizer")
    with pytest.raises(SystemExit, match=f"vocabulary has 257 tokens but the tokenizer {gpt2} "
                                         "has 50257"):
        load_gpt2(parser.parse_args(["--model_path", str(runs["learned"]), "--tokenizer", gpt2]))

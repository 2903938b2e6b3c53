"""GPT2Model against Hugging Face GPT-2, and its own behaviour (fp32, atol 1e-5)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch
from transformers import GPT2LMHeadModel
from transformers import GPT2Model as HFGPT2Model

from config import GPT2Config
from conftest import REPO
from models.gpt2 import GPT2Model, copy_checked, hf_to_ours
from modules.attention import KVCache

ATOL = 1e-5

# name -> (checkpoint sizes, batch, seq_len).
SHAPES = {
    "gpt2-small": (dict(num_hidden_layers=12, num_attention_heads=12, hidden_size=768,
                        intermediate_size=3072, vocab_size=50257,
                        max_position_embeddings=1024), 2, 16),
    "3-heads-of-16": (dict(num_attention_heads=3, hidden_size=48, intermediate_size=192), 3, 20),
    "seq-len-1": (dict(), 3, 1),
    "full-context": (dict(max_position_embeddings=40), 2, 40),
    "one-layer-one-head": (dict(num_hidden_layers=1, num_attention_heads=1), 2, 7),
}


def padded_batch(vocab: int, batch: int, seq_len: int, seed: int = 0):
    """Random ids [B, T] and a right-padded mask with a different length per row."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, vocab, (batch, seq_len), generator=generator)
    mask = torch.ones(batch, seq_len, dtype=torch.long)
    for row in range(1, batch):
        mask[row, max(1, seq_len - 3 * row):] = 0
    return input_ids, mask


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_matches_transformers(make_checkpoint, shape, impl):
    sizes, batch, seq_len = SHAPES[shape]
    path = make_checkpoint(**sizes)
    ours = GPT2Model.from_pretrained(str(path), attention_impl=impl).eval()
    hf_model = HFGPT2Model.from_pretrained(path, attn_implementation="eager").eval()
    hf_lm = GPT2LMHeadModel.from_pretrained(path, attn_implementation="eager").eval()
    input_ids, mask = padded_batch(ours.config.vocab_size, batch, seq_len)
    real = mask.bool()
    with torch.no_grad():
        out = ours(input_ids, mask)
        logits = ours.hidden_state_to_token(out["last_hidden_state"])
        hf_hidden = hf_model(input_ids=input_ids, attention_mask=mask).last_hidden_state
        hf_logits = hf_lm(input_ids=input_ids, attention_mask=mask).logits
    last = mask.sum(1) - 1
    torch.testing.assert_close(out["last_hidden_state"][real], hf_hidden[real], atol=ATOL, rtol=0)
    torch.testing.assert_close(out["last_token"], hf_hidden[torch.arange(batch), last],
                               atol=ATOL, rtol=0)
    torch.testing.assert_close(logits[real], hf_logits[real], atol=ATOL, rtol=0)


def hf_checkpoint_with(activation: str, folder) -> str:
    """A random 2-layer GPT2LMHeadModel with `activation_function=activation`, saved; its
    weights are perturbed by N(0, 0.3) so that the MLP inputs are of order 1, where the two
    GELUs differ (at GPT-2's init they agree to 1e-6)."""
    from transformers import GPT2Config as HFGPT2Config

    torch.manual_seed(0)
    model = GPT2LMHeadModel(HFGPT2Config(vocab_size=61, n_positions=24, n_embd=32, n_layer=2,
                                         n_head=2, activation_function=activation,
                                         bos_token_id=60, eos_token_id=60))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
    model.save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_an_exact_gelu_checkpoint_loads_as_mlp_gelu_and_matches_transformers(tmp_path, impl):
    """activation_function="gelu" (the erf GELU, nanoGPT's) loads as mlp="gelu" and gives
    transformers' logits at 1e-5."""
    path = hf_checkpoint_with("gelu", tmp_path)
    ours = GPT2Model.from_pretrained(path, attention_impl=impl).eval()
    assert ours.config.mlp == "gelu"
    hf_lm = GPT2LMHeadModel.from_pretrained(path, attn_implementation="eager").eval()
    input_ids, mask = padded_batch(61, 3, 20)
    real = mask.bool()
    with torch.no_grad():
        logits = ours.hidden_state_to_token(ours(input_ids, mask)["last_hidden_state"])
        expected = hf_lm(input_ids=input_ids, attention_mask=mask).logits
    torch.testing.assert_close(logits[real], expected[real], atol=ATOL, rtol=0)


def test_a_checkpoint_with_another_activation_is_refused_naming_it(tmp_path):
    with pytest.raises(ValueError, match=r"checkpoint uses activation 'relu'; this model "
                                         r"computes \['gelu', 'gelu_new', 'gelu_pytorch_tanh'\]"):
        GPT2Model.from_pretrained(hf_checkpoint_with("relu", tmp_path))


def saved_as(folder, tmp_path, kind):
    """The checkpoint `folder` saved again as `kind`: an lm-head model, a base model, in
    bfloat16, with an untied head, or sharded into several safetensors files."""
    out = tmp_path / kind
    if kind == "base model":
        HFGPT2Model.from_pretrained(folder).save_pretrained(out)
    elif kind == "bfloat16":
        GPT2LMHeadModel.from_pretrained(folder, dtype=torch.bfloat16).save_pretrained(out)
    elif kind == "untied head":
        model = GPT2LMHeadModel.from_pretrained(folder, tie_word_embeddings=False)
        with torch.no_grad():
            model.lm_head.weight.normal_()
        model.save_pretrained(out)
    elif kind == "sharded":
        GPT2LMHeadModel.from_pretrained(folder).save_pretrained(out, max_shard_size="40KB")
    else:
        GPT2LMHeadModel.from_pretrained(folder).save_pretrained(out)
    return out


@pytest.mark.parametrize("kind", ["lm head", "base model", "bfloat16", "untied head",
                                  "sharded"])
def test_a_checkpoint_folder_loads_the_weights_transformers_reads(make_checkpoint, tmp_path,
                                                                   kind):
    """`from_pretrained` on a folder reads the safetensors itself; every weight equals the
    one `transformers.GPT2Model.from_pretrained` reads from the same folder, mapped."""
    folder = saved_as(make_checkpoint(), tmp_path, kind)
    if kind == "sharded":
        assert (folder / "model.safetensors.index.json").exists()
    ours = GPT2Model.from_pretrained(str(folder))
    reference = GPT2Model(ours.config)
    copy_checked(reference, hf_to_ours(HFGPT2Model.from_pretrained(folder).state_dict(),
                                       ours.config.num_hidden_layers))
    for (name, p), q in zip(ours.named_parameters(), reference.parameters(), strict=True):
        assert p.dtype == torch.float32 and torch.equal(p, q), name


def test_a_checkpoint_folder_loads_without_transformers_model_classes(make_checkpoint):
    """Loading a local folder imports neither transformers' modelling code nor GPT-2's
    (seconds of start-up in every task script and grading child)."""
    code = ("import sys\nfrom models.gpt2 import GPT2Model\n"
            f"GPT2Model.from_pretrained({str(make_checkpoint())!r})\n"
            "print(sorted(m for m in sys.modules if m.startswith('transformers.model')))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "modeling_utils" not in result.stdout and "modeling_gpt2" not in result.stdout


def test_a_checkpoint_without_a_layer_names_the_missing_weight(make_checkpoint, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "cut"
    shutil.copytree(make_checkpoint(), folder)
    state = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in state.items() if ".h.1." not in k}, folder / "model.safetensors",
              metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"lacks GPT-2 weight 'h\.1\.ln_1\.weight' \(12 of"):
        GPT2Model.from_pretrained(str(folder))


@pytest.fixture(scope="module")
def tiny(make_checkpoint) -> GPT2Model:
    return GPT2Model.from_pretrained(str(make_checkpoint())).eval()


def test_padding_invariance(tiny):
    input_ids, _ = padded_batch(tiny.config.vocab_size, 2, 10)
    mask = torch.ones_like(input_ids)
    padded_ids = torch.cat([input_ids, torch.full((2, 6), 5)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(2, 6, dtype=torch.long)], dim=1)
    with torch.no_grad():
        a = tiny(input_ids, mask)
        b = tiny(padded_ids, padded_mask)
    torch.testing.assert_close(b["last_hidden_state"][:, :10], a["last_hidden_state"],
                               atol=ATOL, rtol=0)
    torch.testing.assert_close(b["last_token"], a["last_token"], atol=ATOL, rtol=0)


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_causality(make_checkpoint, impl):
    model = GPT2Model.from_pretrained(str(make_checkpoint()), attention_impl=impl).eval()
    input_ids, _ = padded_batch(model.config.vocab_size, 1, 12)
    mask = torch.ones_like(input_ids)
    changed = input_ids.clone()
    changed[0, 7] = (changed[0, 7] + 1) % model.config.vocab_size
    with torch.no_grad():
        a = model(input_ids, mask)["last_hidden_state"]
        b = model(changed, mask)["last_hidden_state"]
    assert torch.equal(a[:, :7], b[:, :7])
    assert (a[:, 7:] - b[:, 7:]).abs().amax(dim=-1).min() > 1e-4


def test_dropout_off_in_eval_on_in_train(make_checkpoint):
    model = GPT2Model.from_pretrained(str(make_checkpoint()), hidden_dropout_prob=0.3,
                                      attention_probs_dropout_prob=0.3)
    input_ids, mask = padded_batch(model.config.vocab_size, 2, 9)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(input_ids, mask)["last_hidden_state"],
                           model(input_ids, mask)["last_hidden_state"])
        model.train()
        torch.manual_seed(0)
        a = model(input_ids, mask)["last_hidden_state"]
        b = model(input_ids, mask)["last_hidden_state"]
    assert (a - b).abs().max() > 1e-3


def test_sdpa_matches_eager_in_training_with_gradients(make_checkpoint):
    """Gradients of both paths agree in float64 at 1e-10 (in fp32 their summation orders
    differ by ~2e-5 relative on the embedding gradient, which is accumulation noise)."""
    path = str(make_checkpoint())
    eager = GPT2Model.from_pretrained(path, hidden_dropout_prob=0.0,
                                      attention_probs_dropout_prob=0.0)
    fast = GPT2Model.from_pretrained(path, attention_impl="sdpa", hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0)
    input_ids, mask = padded_batch(eager.config.vocab_size, 3, 15)
    for model in (eager, fast):
        model.double()(input_ids, mask)["last_token"].square().sum().backward()
    for (name, p), q in zip(eager.named_parameters(), fast.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-10, rtol=0, msg=name)


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_kv_cache_matches_full_forward(make_checkpoint, impl):
    """Prompt then one token at a time through the cache == one full forward (1e-5)."""
    model = GPT2Model.from_pretrained(str(make_checkpoint()), attention_impl=impl).eval()
    input_ids, _ = padded_batch(model.config.vocab_size, 2, 12)
    mask = torch.ones_like(input_ids)
    cache = KVCache(model.config, batch_size=2, max_length=12)
    with torch.no_grad():
        full = model(input_ids, mask)["last_hidden_state"]
        steps = [model(input_ids[:, :5], mask[:, :5], cache=cache)["last_hidden_state"]]
        for t in range(5, 12):
            steps.append(model(input_ids[:, t:t + 1], mask[:, :t + 1],
                               cache=cache)["last_hidden_state"])
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=ATOL, rtol=0)
    assert cache.length == 12


def test_kv_cache_left_padding_matches_unpadded(tiny):
    """A left-padded row in a cached batch gives the states of the same row alone."""
    input_ids, _ = padded_batch(tiny.config.vocab_size, 1, 6)
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), input_ids], dim=1)
    padded_mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        alone = tiny(input_ids, torch.ones_like(input_ids))["last_hidden_state"]
        cache = KVCache(tiny.config, batch_size=1, max_length=9)
        left = tiny(padded, padded_mask, cache=cache)["last_hidden_state"]
    torch.testing.assert_close(left[:, 3:], alone, atol=ATOL, rtol=0)


@pytest.mark.parametrize("ids_shape, mask_shape, message", [
    ((2, 3, 4), (2, 3, 4), "must be 2-D"),
    ((2, 5), (2, 6), "attention_mask has shape"),
    ((1, 65), (1, 65), "exceeds the context length 64"),
])
def test_bad_shapes_raise_value_error(tiny, ids_shape, mask_shape, message):
    with pytest.raises(ValueError, match=message):
        tiny(torch.zeros(ids_shape, dtype=torch.long), torch.ones(mask_shape, dtype=torch.long))


def test_ids_outside_vocabulary(tiny):
    with pytest.raises(ValueError, match=r"token id 97, outside the vocabulary \[0, 97\)"):
        tiny(torch.tensor([[1, 97]]), torch.ones(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="token id -1"):
        tiny(torch.tensor([[-1, 2]]), torch.ones(1, 2, dtype=torch.long))


def test_mask_not_right_padded(tiny):
    with pytest.raises(ValueError, match="row 1 is not right-padded"):
        tiny(torch.ones(2, 4, dtype=torch.long), torch.tensor([[1, 1, 1, 1], [0, 1, 1, 1]]))


def test_shape_mismatch_names_key_and_shapes(tiny):
    state = {name: p.detach().clone() for name, p in tiny.named_parameters()}
    state["pos_embedding.weight"] = torch.zeros(10, 32)
    with pytest.raises(ValueError, match=r"pos_embedding.weight: checkpoint has \(10, 32\), "
                                         r"model expects \(64, 32\)"):
        copy_checked(tiny, state)
    del state["pos_embedding.weight"]
    with pytest.raises(ValueError, match=r"missing \['pos_embedding.weight'\]"):
        copy_checked(tiny, state)


def test_offline_hub_name_says_how_to_pass_a_folder(tmp_path):
    """With no network and an empty cache, `gpt2` fails with a message naming --model_path."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    code = ("from models.gpt2 import GPT2Model\n"
            "try:\n    GPT2Model.from_pretrained('gpt2')\n"
            "except OSError as e:\n    print(e)\n")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=120)
    assert "could not load GPT-2 weights 'gpt2'" in result.stdout
    assert "--model_path DIR" in result.stdout


def test_hub_name_loads_from_the_hugging_face_cache(make_checkpoint, tmp_path):
    """`--model_size gpt2` as a real user runs it: the hub name resolves, offline, to the
    snapshot a Hugging Face cache holds (here a tiny checkpoint laid out as
    hub/models--gpt2/{refs/main, snapshots/<commit>/}), and gives the folder's logits."""
    folder = make_checkpoint(seed=3)
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--gpt2"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    code = ("import argparse, torch\n"
            "from training.args import add_model_args\n"
            "from training.loading import load_gpt2\n"
            "parser = argparse.ArgumentParser(); add_model_args(parser)\n"
            "model = load_gpt2(parser.parse_args(['--model_size', 'gpt2'])).eval()\n"
            "ids = torch.arange(12).reshape(2, 6)\n"
            "out = model(ids, torch.ones_like(ids))['last_hidden_state']\n"
            "torch.save(model.hidden_state_to_token(out), sys.argv[1])\n")
    logits_path = tmp_path / "logits.pt"
    result = subprocess.run([sys.executable, "-c", "import sys\n" + code, str(logits_path)],
                            env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    reference = GPT2Model.from_pretrained(str(folder)).eval()
    ids = torch.arange(12).reshape(2, 6)
    with torch.no_grad():
        expected = reference.hidden_state_to_token(
            reference(ids, torch.ones_like(ids))["last_hidden_state"])
    torch.testing.assert_close(torch.load(logits_path), expected, atol=0.0, rtol=0.0)


def test_config_presets_and_switches():
    assert GPT2Config.from_preset("gpt2-xl").hidden_size == 1600
    assert GPT2Config.from_preset("gpt2-medium").num_hidden_layers == 24
    with pytest.raises(ValueError, match="attention_impl='flash'; allowed values"):
        GPT2Config(attention_impl="flash")
    with pytest.raises(ValueError, match="not divisible"):
        GPT2Config(hidden_size=10, num_attention_heads=3)
    with pytest.raises(ValueError, match="unknown GPT-2 preset"):
        GPT2Config.from_preset("gpt3")


def test_linear_weights_are_stored_input_major(tiny):
    """Every nn.Linear weight keeps its [out, in] shape but is laid out as [in, out] in
    memory (the faster layout for generation), also after loading a checkpoint."""
    for name, module in tiny.named_modules():
        if isinstance(module, torch.nn.Linear):
            out_features, _ = module.weight.shape
            assert module.weight.stride() == (1, out_features), name

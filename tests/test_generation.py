"""models.generate.generate: the KV cache changes speed, never tokens; top-p; EOS; HF greedy."""

import pytest
import torch

from models.generate import generate, sample_next
from models.gpt2 import GPT2Model
from sonnet_generation import lm_loss

PROMPTS = [[5, 17, 42, 8, 3], [11, 2], [60, 61, 62, 63, 64, 65, 66, 67]]  # ragged: left padding


@pytest.fixture(scope="module")
def tiny(make_checkpoint):
    """A random tiny GPT-2 (vocab 97) in eval mode, and its checkpoint folder."""
    path = make_checkpoint(seed=3)
    return GPT2Model.from_pretrained(str(path)).eval(), path


@pytest.mark.parametrize("temperature, top_p", [(0.0, 1.0), (1.0, 0.9), (1.3, 1.0)])
def test_cache_gives_the_same_tokens_as_no_cache(tiny, temperature, top_p):
    model, _ = tiny
    kwargs = dict(max_new_tokens=30, eos_id=None, temperature=temperature, top_p=top_p, seed=7)
    with_cache = generate(model, PROMPTS, use_cache=True, **kwargs)
    without = generate(model, PROMPTS, use_cache=False, **kwargs)
    assert with_cache == without
    assert all(len(row) == 30 for row in with_cache)


def test_seed_decides_the_sample(tiny):
    model, _ = tiny
    kwargs = dict(max_new_tokens=20, eos_id=None, temperature=1.0, top_p=1.0)
    assert generate(model, PROMPTS, seed=1, **kwargs) == generate(model, PROMPTS, seed=1, **kwargs)
    assert generate(model, PROMPTS, seed=1, **kwargs) != generate(model, PROMPTS, seed=2, **kwargs)


def test_batched_left_padding_matches_one_at_a_time(tiny):
    model, _ = tiny
    batched = generate(model, PROMPTS, max_new_tokens=15, eos_id=None)
    alone = [generate(model, [p], max_new_tokens=15, eos_id=None)[0] for p in PROMPTS]
    assert batched == alone


def test_greedy_matches_transformers_generate(tiny):
    """Same weights, same greedy tokens as Hugging Face's own generate() (trusted reference)."""
    from transformers import GPT2LMHeadModel

    model, path = tiny
    hf = GPT2LMHeadModel.from_pretrained(str(path)).eval()
    prompt = PROMPTS[0]
    expected = hf.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt)),
                           max_new_tokens=25, min_new_tokens=25, do_sample=False,
                           pad_token_id=0)[0, len(prompt):].tolist()
    assert generate(model, [prompt], max_new_tokens=25, eos_id=None)[0] == expected


def test_rows_stop_at_eos(tiny):
    model, _ = tiny
    free = generate(model, PROMPTS, max_new_tokens=10, eos_id=None)
    eos = free[1][3]  # row 1's 4th token: row 1 stops there, the others go on or stop earlier
    stopped = generate(model, PROMPTS, max_new_tokens=10, eos_id=eos)
    for row, tokens in zip(free, stopped, strict=True):
        expected = row[:row.index(eos)] if eos in row else row
        assert tokens == expected


def test_sample_next_rules():
    generator = torch.Generator().manual_seed(0)
    logits = torch.tensor([[0.0, 3.0, 1.0, -1.0], [2.0, 0.0, 0.0, 0.0]])
    assert sample_next(logits, 0.0, 1.0, generator).tolist() == [1, 0]
    # p(top) ~ 0.84 (row 0) and ~ 0.71 (row 1) >= top_p = 0.5: only the top token survives.
    for _ in range(20):
        assert sample_next(logits, 1.0, 0.5, generator).tolist() == [1, 0]
    draws = torch.stack([sample_next(logits, 1.0, 1.0, generator) for _ in range(400)])
    assert set(draws[:, 0].tolist()) == {0, 1, 2, 3}  # full distribution reachable


def test_lm_loss_ignores_padding(tiny):
    model, _ = tiny
    model = model.train(False)
    ids = torch.tensor([[5, 6, 7, 8, 0, 0], [9, 10, 11, 12, 13, 14]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    other = ids.clone()
    other[0, 4:] = 50  # a different pad token must not change the loss
    assert torch.allclose(lm_loss(model, ids, mask), lm_loss(model, other, mask), atol=1e-6)


@pytest.mark.parametrize("attention_impl", ["eager", "sdpa"])
def test_bf16_autocast_stays_finite_and_near_fp32(tiny, attention_impl):
    """`--use_gpu` runs under bf16 autocast.  CI has no GPU, so the same ops run under the
    CPU's bf16 autocast: a right-padded forward, the LM loss's gradients and cached
    generation stay finite, and the logits stay within bf16's precision of fp32 (8-bit
    mantissa: atol 1e-2, rtol 2e-2 on logits up to 0.7; the difference measured 2e-3)."""
    _, path = tiny
    model = GPT2Model.from_pretrained(str(path), attention_impl=attention_impl).eval()
    ids = torch.tensor([[5, 17, 42, 8, 3, 9], [11, 2, 7, 0, 0, 0]])
    mask = torch.tensor([[1] * 6, [1, 1, 1, 0, 0, 0]])
    with torch.no_grad():
        exact = model.hidden_state_to_token(model(ids, mask)["last_hidden_state"])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model.hidden_state_to_token(model(ids, mask)["last_hidden_state"])
    assert low.dtype == torch.bfloat16
    real = mask.bool()
    torch.testing.assert_close(low.float()[real], exact[real], atol=1e-2, rtol=2e-2)
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = lm_loss(model, ids, mask)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all()
                                        for p in model.parameters() if p.grad is not None)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tokens = generate(model, PROMPTS, max_new_tokens=12, eos_id=None, temperature=1.0,
                          top_p=0.9)
    assert [len(row) for row in tokens] == [12, 12, 12]

"""Targeted mutants: plausible student bugs, each applied to the reference solution.

Each mutant breaks one handout rule and must lose exactly the cases whose `rules` list
that rule (`autograder/case.py`), keeping every other point.  This is what makes a case's
declared rules trustworthy.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from autograder_helpers import reference_submission

from autograder.case import all_cases
from autograder.grade import grade

# name -> (rule, file, reference text, mutated text)
MUTANTS = {
    "no_scale": (
        "attn_scale", "modules/attention.py",
        "scores = query @ key.transpose(-1, -2) / math.sqrt(d)",
        "scores = query @ key.transpose(-1, -2)"),
    "mask_after_softmax": (
        "attn_mask_before_softmax", "modules/attention.py",
        "        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)\n"
        "        scores = scores + attention_mask\n"
        "        probs = self.dropout(torch.softmax(scores, dim=-1))",
        "        probs = torch.softmax(scores, dim=-1).masked_fill(~causal, 0.0)\n"
        "        probs = self.dropout(probs * (attention_mask == 0))"),
    "no_causal_mask": (
        "attn_causal", "modules/attention.py",
        "        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)\n", ""),
    "no_kv_offset": (
        "attn_kv_offset", "modules/attention.py",
        "causal = torch.ones(T_q, T_k, dtype=torch.bool, device=query.device).tril(T_k - T_q)\n"
        "        scores = scores.masked_fill",
        "causal = torch.ones(T_q, T_k, dtype=torch.bool, device=query.device).tril()\n"
        "        scores = scores.masked_fill"),
    "sdpa_through_eager_attention": (
        "sdpa", "modules/attention.py",
        "        dropout_p = self.dropout.p if self.training else 0.0\n"
        "        if T_q == T_k and not attention_mask.any():",
        "        return self.attention(key, query, value, attention_mask)\n"
        "        dropout_p = self.dropout.p if self.training else 0.0\n"
        "        if T_q == T_k and not attention_mask.any():"),
    "layer_dropout_swapped": (
        "layer_dropout", "modules/gpt2_layer.py",
        "hidden_states = self.add(hidden_states, attended, self.attention_dense,\n"
        "                                 self.attention_dropout)",
        "hidden_states = self.add(hidden_states, attended, self.attention_dense,\n"
        "                                 self.out_dropout)"),
    "layer_norm_in_add": (
        "add", "modules/gpt2_layer.py",
        "return input + dropout(dense_layer(output))",
        "return self.out_layer_norm(input + dropout(dense_layer(output)))"),
    "post_ln": (
        "pre_ln", "modules/gpt2_layer.py",
        "        attended = self.self_attention(self.attention_layer_norm(hidden_states), "
        "attention_mask,\n                                       context)  # (B, T, D)\n"
        "        hidden_states = self.add(hidden_states, attended, self.attention_dense,\n"
        "                                 self.attention_dropout)\n"
        "        inner = self.interm_af(self.interm_dense(self.out_layer_norm(hidden_states)))"
        "  # (B, T, 4D)\n"
        "        return self.add(hidden_states, inner, self.out_dense, self.out_dropout)",
        "        attended = self.self_attention(hidden_states, attention_mask, context)\n"
        "        hidden_states = self.attention_layer_norm(self.add(\n"
        "            hidden_states, attended, self.attention_dense, self.attention_dropout))\n"
        "        inner = self.interm_af(self.interm_dense(hidden_states))\n"
        "        return self.out_layer_norm(\n"
        "            self.add(hidden_states, inner, self.out_dense, self.out_dropout))"),
    "exact_gelu": (
        "gelu_tanh", "modules/gpt2_layer.py",
        "inner = self.interm_af(self.interm_dense(", "inner = F.gelu(self.interm_dense("),
    "no_bias_correction": (
        "bias_correction", "optimizer.py", 'if group["correct_bias"]:', "if False:"),
    "weight_decay_before_update": (
        "weight_decay", "optimizer.py",
        '                p.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-alpha)\n'
        '                if group["weight_decay"] > 0.0:\n'
        '                    p.mul_(1.0 - group["lr"] * group["weight_decay"])\n',
        '                if group["weight_decay"] > 0.0:\n'
        '                    p.mul_(1.0 - group["lr"] * group["weight_decay"])\n'
        '                p.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-alpha)\n'),
    "weight_decay_without_lr": (
        "weight_decay", "optimizer.py",
        'p.mul_(1.0 - group["lr"] * group["weight_decay"])',
        'p.mul_(1.0 - group["weight_decay"])'),
    "hf_mapping_no_transpose": (
        "hf_mapping", "models/gpt2.py",
        'ours[f"{mine}self_attention.{name}.weight"] = weight.t()',
        'ours[f"{mine}self_attention.{name}.weight"] = weight'),
    "embed_without_positions": (
        "embed", "models/gpt2.py",
        "embeddings = self.word_embedding(input_ids) + self.pos_embedding(position_ids)",
        "embeddings = self.word_embedding(input_ids)"),
    "bpe_ties_reversed": (
        "bpe_ties", "bpe.py", "return (count, left, right)",
        "return (count, tuple(-c for c in left), tuple(-c for c in right))"),
    "bpe_merge_overlapping": (
        "bpe_merge", "bpe.py",
        "            out.append(new_id)\n            i += 2\n",
        "            out.append(new_id)\n            i += 1 if i + 2 < n and ids[i + 2] == b else 2\n"),
    "bpe_encode_leftmost_not_lowest_rank": (
        "bpe_encode", "bpe.py", "best = min(found)",
        "best = next((f for f in found if f is not none), none)"),
    "alibi_slopes_even_not_odd": (
        "alibi_slopes", "modules/positions.py", "geometric(2 * power)[0::2]",
        "geometric(2 * power)[1::2]"),
    "alibi_bias_reversed": (
        "alibi_bias", "modules/positions.py",
        "key_positions[:, None, None, :] - query_positions[:, None, :, None]",
        "query_positions[:, None, :, None] - key_positions[:, None, None, :]"),
    "rotary_frequencies_over_half": (
        "rotary_tables", "modules/positions.py",
        "dtype=torch.int64).float() / rotary_dims",
        "dtype=torch.int64).float() / (rotary_dims // 2)"),
    "rotate_half_sign": (
        "rotary_half", "modules/positions.py",
        "return torch.cat([a * cos - b * sin, b * cos + a * sin, rest], dim=-1)",
        "return torch.cat([a * cos + b * sin, b * cos - a * sin, rest], dim=-1)"),
    "rotate_interleaved_pairs_swapped": (
        "rotary_interleaved", "modules/positions.py",
        "a, b, rest = x[..., 0:2 * half:2], x[..., 1:2 * half:2]",
        "b, a, rest = x[..., 0:2 * half:2], x[..., 1:2 * half:2]"),
    "swiglu_gates_the_value": (
        "swiglu", "modules/mlp.py", "return F.silu(gate) * value", "return F.silu(value) * gate"),
    "z_loss_square_of_mean": (
        "z_loss", "training/losses.py", "logsumexp(dim=-1).square().mean()",
        "logsumexp(dim=-1).mean().square()"),
    "mu_center_columns": (
        "mu_center", "training/losses.py", "output_embedding.mean(dim=0, keepdim=True)",
        "output_embedding.mean(dim=1, keepdim=True)"),
    "sentiment_last_position": (
        "sentiment_head", "classifier.py",
        'last_token = self.gpt(input_ids, attention_mask)["last_token"]',
        'last_token = self.gpt(input_ids, attention_mask)["last_hidden_state"][:, -1]'),
    "sentiment_no_dropout": (
        "sentiment_dropout", "classifier.py",
        "return self.classifier(self.dropout(last_token))", "return self.classifier(last_token)"),
    "cloze_columns_swapped": (
        "cloze", "paraphrase_detection.py",
        "return logits[:, self.answer_ids]", "return logits[:, self.answer_ids.flip(0)]"),
    "sample_greedy_not_special": (
        "sample_greedy", "models/generate.py", "if temperature == 0:", "if temperature < 0:"),
    "sample_temperature_multiplied": (
        "sample_temperature", "models/generate.py",
        "torch.softmax(logits / temperature, dim=-1)",
        "torch.softmax(logits * temperature, dim=-1)"),
    "sample_top_p_ignored": (
        "sample_top_p", "models/generate.py",
        "    sorted_probs = sorted_probs.masked_fill(cumulative - sorted_probs >= top_p, 0.0)\n",
        ""),
    "sample_two_draws_per_row": (
        "sample_draw", "models/generate.py",
        "u = torch.rand(logits.shape[0], generator=generator)",
        "u = torch.rand(logits.shape[0], 2, generator=generator)[:, 0]"),
    "lora_scaled_by_alpha": (
        "lora_scaling", "modules/lora.py",
        "F.linear(self.lora_dropout(x), self.lora_A) * self.scaling  # (..., r)",
        "F.linear(self.lora_dropout(x), self.lora_A) * self.scaling * self.lora_A.shape[0]"),
    "lora_dropout_on_output": (
        "lora_dropout", "modules/lora.py",
        "        down = F.linear(self.lora_dropout(x), self.lora_A) * self.scaling  # (..., r)\n"
        "        return result + F.linear(down, self.lora_B)  # (..., out)\n",
        "        down = F.linear(x, self.lora_A) * self.scaling\n"
        "        return result + self.lora_dropout(F.linear(down, self.lora_B))\n"),
    "lora_B_not_zero": (
        "lora_init", "modules/lora.py",
        "self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, **factory))",
        "self.lora_B = nn.Parameter(torch.full((base.out_features, r), 0.01, **factory))"),
    "lora_delta_transposed": (
        "lora_delta", "modules/lora.py",
        "return (self.lora_B @ self.lora_A) * self.scaling  # (out, in)",
        "return (self.lora_B @ self.lora_A).T * self.scaling"),
    "lora_merge_wrong_sign": (
        "lora_merge", "modules/lora.py",
        "self.base.weight.add_(self.delta_weight().to(self.base.weight.dtype))\n"
        "        self.merged = True",
        "self.base.weight.sub_(self.delta_weight().to(self.base.weight.dtype))\n"
        "        self.merged = True"),
    "logp_prompt_counted": (
        "logp_completion", "dpo.py",
        "mask = (completion_mask[:, 1:] * attention_mask[:, 1:]).to(token_logps.dtype)",
        "mask = attention_mask[:, 1:].to(token_logps.dtype)"),
    "logp_off_by_one": (
        "logp_shift", "dpo.py",
        "logits = model.hidden_state_to_token(hidden[:, :-1])",
        "logits = model.hidden_state_to_token(hidden[:, 1:])"),
    "dpo_margin_sign_flipped": (
        "dpo_margin", "dpo.py",
        "logits = policy_logratios - (0 if reference_free else reference_logratios)",
        "logits = (0 if reference_free else reference_logratios) - policy_logratios"),
    "dpo_beta_missing": (
        "dpo_beta", "dpo.py",
        "(-F.logsigmoid(beta * logits) * (1 - label_smoothing)\n"
        "            - F.logsigmoid(-beta * logits) * label_smoothing)",
        "(-F.logsigmoid(logits) * (1 - label_smoothing)\n"
        "            - F.logsigmoid(-logits) * label_smoothing)"),
    "dpo_label_smoothing_swapped": (
        "dpo_sigmoid", "dpo.py",
        "(-F.logsigmoid(beta * logits) * (1 - label_smoothing)\n"
        "            - F.logsigmoid(-beta * logits) * label_smoothing)",
        "(-F.logsigmoid(beta * logits) * label_smoothing\n"
        "            - F.logsigmoid(-beta * logits) * (1 - label_smoothing))"),
    "ns_coefficients_swapped": (
        "ns_iteration", "optimizer.py",
        "X = a * X + (b * A + c * A @ A) @ X", "X = a * X + (c * A + b * A @ A) @ X"),
    "muon_nesterov_ignored": (
        "muon_nesterov", "optimizer.py",
        'update = grad.lerp(buf, momentum) if group["nesterov"] else buf', "update = buf"),
    "shampoo_roots_every_step": (
        "shampoo_update_every", "optimizer.py",
        'if (state["step"] - 1) % group["update_every"] == 0:', "if True:"),
    "quantize_scale_over_128": (
        "quant_scale", "modules/quantize.py",
        "scale = work.abs().amax(dim=1) / Q_MAX  # (out,)",
        "scale = work.abs().amax(dim=1) / (Q_MAX + 1)  # (out,)"),
    "quantize_zero_row_scale_zero": (
        "quant_zero_row", "modules/quantize.py",
        "    scale = torch.where(scale == 0, torch.ones_like(scale), scale)\n", ""),
    "quantize_round_half_up": (
        "quant_round", "modules/quantize.py",
        "q = torch.round(work / scale[:, None])", "q = torch.floor(work / scale[:, None] + 0.5)"),
    "int8_linear_without_scale": (
        "int8_forward", "modules/quantize.py",
        "weight = dequantize_int8(self.q, self.scale).to(x.dtype)  # (out, in)",
        "weight = self.q.to(x.dtype)  # (out, in)"),
    "int8_linear_in_float32": (
        "int8_dtype", "modules/quantize.py",
        "        weight = dequantize_int8(self.q, self.scale).to(x.dtype)  # (out, in)\n"
        "        bias = None if self.bias is None else self.bias.to(x.dtype)\n"
        "        return F.linear(x, weight, bias)  # (..., out)\n",
        "        weight = dequantize_int8(self.q, self.scale)  # (out, in)\n"
        "        return F.linear(x.float(), weight, self.bias)  # (..., out)\n"),
    "reft_source_sign_flipped": (
        "reft_edit", "modules/reft.py",
        "delta = (self.learned_source(h) - F.linear(h, R)) @ R  # (..., D)",
        "delta = (self.learned_source(h) + F.linear(h, R)) @ R  # (..., D)"),
    "reft_dropout_on_the_edit_only": (
        "reft_dropout", "modules/reft.py",
        "return self.dropout((h + delta).to(h.dtype))",
        "return (h + self.dropout(delta)).to(h.dtype)"),
    "smart_kl_not_detached": (
        "smart_kl_directions", "training/smart.py",
        "fixed_input, fixed_target = input_logp.detach(), target_logp.detach()",
        "fixed_input, fixed_target = input_logp, target_logp"),
    "smart_kl_summed_over_rows": (
        "smart_kl_reduction", "training/smart.py",
        "return (towards_input + towards_target).mean()",
        "return (towards_input + towards_target).sum()"),
    "smart_descent": (
        "smart_ascent", "training/smart.py",
        "step = noise + step_size * gradient  # (B, T, D)",
        "step = noise - step_size * gradient"),
    "smart_l2_norm": (
        "smart_normalise", "training/smart.py",
        "norm = step.abs().amax(dim=-1, keepdim=True)  # (B, T, 1), the infinity norm",
        "norm = step.norm(dim=-1, keepdim=True)"),
    "smart_final_clean_detached": (
        "smart_final", "training/smart.py",
        "return symmetric_kl(eval_fn(embeddings + noise), clean_logits)\n",
        "return symmetric_kl(eval_fn(embeddings + noise), clean_logits.detach())\n"),
    "window_one_key_too_many": (
        "window_band", "modules/attention.py",
        "visible = visible & ((key_at > query_at - window) | (key_at < sinks))",
        "visible = visible & ((key_at >= query_at - window) | (key_at < sinks))"),
    "sinks_widen_the_window": (
        "window_sinks", "modules/attention.py",
        "visible = visible & ((key_at > query_at - window) | (key_at < sinks))",
        "visible = visible & (key_at > query_at - window - sinks)"),
}


def mutate(folder: Path, rel: str, old: str, new: str) -> None:
    path = folder / rel
    text = path.read_text()
    assert text.count(old) == 1, f"{rel}: the reference text of the mutant moved: {old!r}"
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_loses_exactly_the_cases_of_its_rule(name, tmp_path):
    rule, rel, old, new = MUTANTS[name]
    folder = reference_submission(tmp_path / "submission")
    mutate(folder, rel, old, new)
    data = grade(folder, predictions=False)
    cases = all_cases()
    expected = {case.name for case in cases if rule in case.rules}
    failed = {t["extra_data"]["case"] for t in data["tests"] if t["status"] != "passed"}
    assert expected, f"no case checks rule {rule}"
    assert failed == expected, (f"lost but not declared: {sorted(failed - expected)}; "
                                f"declared but kept: {sorted(expected - failed)}")
    total = sum(case.points for case in cases)
    lost = sum(case.points for case in cases if case.name in expected)
    assert data["score"] == pytest.approx(total - lost, abs=1e-9)

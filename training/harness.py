"""lm-evaluation-harness over any kit model: ``KitLM``, an ``lm_eval`` ``TemplateLM``.

    from lm_eval import simple_evaluate
    from training.harness import KitLM
    from training.loading import load_model
    model, tokenizer = load_model("out/pretrain", None)
    results = simple_evaluate(KitLM(model, tokenizer), tasks=["lambada_openai"])

The harness asks three things of a model (``lm_eval.api.model.LM``):

- ``loglikelihood``: (context, continuation) -> (summed log-probability of the
  continuation's tokens, whether greedy decoding gives exactly them);
- ``loglikelihood_rolling``: text -> its summed log-probability, scored in the harness's
  disjoint windows (``max_length`` tokens, else the trained length), the first conditioned
  on the end-of-text token;
- ``generate_until``: (context, generation kwargs) -> the greedy (or sampled) continuation,
  cut before the first ``until`` string.

``TemplateLM`` tokenizes the pairs (a trailing space of the context moves to the
continuation, as GPT-2 tokenizes it); this file scores the tokens.  A context longer than
``max_length`` loses its oldest tokens (left truncation).  ``max_length`` is the model's
limit: the table length for learned positions; ALiBi, rope and no positions take any length,
so there it is None unless one is given, and rolling windows are the trained length
(``config.max_position_embeddings``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from lm_eval import utils as lm_utils
from lm_eval.api.instance import Instance
from lm_eval.api.model import TemplateLM
from tqdm import tqdm

from models.generate import generate
from models.gpt2 import GPT2Model
from training.lm_data import LMTokenizer

DEFAULT_MAX_GEN_TOKS = 256  # the harness's own default for generate_until


class KitLM(TemplateLM):
    """A ``GPT2Model`` and its tokenizer as an ``lm_eval`` model.

    ``tokenizer`` is an ``LMTokenizer`` (``training.loading.load_model``).  The prefix token
    that conditions the first token of a text is its ``<|endoftext|>``, or, for a tokenizer
    without one (the bytes tokenizer), the newline.  ``batch_size`` sequences go through
    each forward pass; ``max_length`` (None: the model's limit, see the module doc) caps
    the tokens one pass sees.
    """

    def __init__(self, model: GPT2Model, tokenizer: LMTokenizer, batch_size: int = 8,
                 device: str = "cpu", max_length: int | None = None):
        super().__init__()
        limit = model.positions.max_length
        if max_length is not None and (max_length < 1 or (limit and max_length > limit)):
            raise ValueError(f"max_length {max_length} is outside [1, {limit}], the context "
                             "of this model's learned positions" if limit else
                             f"max_length must be a positive integer, got {max_length}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        self.model = model.to(device).eval()
        self.lm_tokenizer = tokenizer
        self.batch_size = batch_size
        self._device = torch.device(device)
        self.max_length = max_length or limit
        self.rolling_length = self.max_length or model.config.max_position_embeddings
        eot = tokenizer.eot_token
        self._prefix = eot if eot is not None else tokenizer.encode("\n")[-1]

    @property
    def eot_token_id(self) -> int:
        return self._prefix

    def tok_encode(self, string: str, add_special_tokens: bool | None = None,
                   **kwargs: Any) -> list[int]:
        """The token ids of ``string`` (GPT-2 adds no begin-of-text token)."""
        return self.lm_tokenizer.encode(string)

    def tok_decode(self, tokens: list[int]) -> str:
        return self.lm_tokenizer.decode(tokens)

    @torch.no_grad()
    def continuation_logprobs(self, pairs: list[tuple[list[int], list[int]]],
                              disable_tqdm: bool = True) -> list[tuple[float, bool]]:
        """(summed log-probability, is greedy) of each continuation after its context.

        Each row is context + continuation, left-truncated to ``max_length + 1`` tokens and
        fed without its last token; the last len(continuation) positions score it (only
        those go through the output head: [C, V] per row, not [T, V]).  Rows go in batches
        of ``batch_size``, longest first, right-padded.  ValueError for an empty
        continuation or one longer than ``max_length``.
        """
        for _, continuation in pairs:
            if not continuation:
                raise ValueError("an empty continuation has no tokens to score")
            if self.max_length is not None and len(continuation) > self.max_length:
                raise ValueError(f"a continuation of {len(continuation)} tokens does not fit "
                                 f"the context of {self.max_length} tokens")
        order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i][0]) - len(pairs[i][1]))
        results: list[tuple[float, bool]] = [(0.0, False)] * len(pairs)
        for start in tqdm(range(0, len(order), self.batch_size), disable=disable_tqdm,
                          desc="loglikelihood"):
            rows = order[start:start + self.batch_size]
            inputs = []
            for i in rows:
                whole = pairs[i][0] + pairs[i][1]
                if self.max_length is not None:
                    whole = whole[-(self.max_length + 1):]
                inputs.append(whole[:-1])
            longest = max(len(row) for row in inputs)
            ids = torch.zeros(len(rows), longest, dtype=torch.long)
            mask = torch.zeros(len(rows), longest, dtype=torch.long)
            for r, row in enumerate(inputs):
                ids[r, :len(row)] = torch.tensor(row)
                mask[r, :len(row)] = 1
            hidden = self.model(ids.to(self.device), mask.to(self.device))["last_hidden_state"]
            for r, i in enumerate(rows):  # hidden (B, T, D)
                target = torch.tensor(pairs[i][1], device=self.device)  # (C,)
                end = len(inputs[r])
                logits = self.model.hidden_state_to_token(hidden[r, end - len(target):end])
                logprobs = F.log_softmax(logits.float(), dim=-1)  # (C, V)
                picked = logprobs.gather(1, target[:, None]).squeeze(1)  # (C,)
                greedy = bool((logprobs.argmax(dim=-1) == target).all())
                results[i] = (float(picked.double().sum()), greedy)
        return results

    def _loglikelihood_tokens(self, requests: list[tuple[Any, list[int], list[int]]],
                              disable_tqdm: bool = False, **kwargs: Any
                              ) -> list[tuple[float, bool]]:
        """``continuation_logprobs`` of (key, context ids, continuation ids) requests; each
        answer with a key goes to the harness's cache hook."""
        answers = self.continuation_logprobs([(c, t) for _, c, t in requests], disable_tqdm)
        for (key, _, _), answer in zip(requests, answers, strict=True):
            if key is not None:
                self.cache_hook.add_partial("loglikelihood", key, answer)
        return answers

    def loglikelihood_rolling(self, requests: list[Instance],
                              disable_tqdm: bool = False) -> list[float]:
        """Summed log-probability of each text, every token scored once: the harness's
        disjoint windows of ``max_length`` tokens (without a limit, the trained length)."""
        windows, owners = [], []
        for n, (text,) in enumerate(tqdm([r.args for r in requests], disable=disable_tqdm,
                                         desc="rolling windows")):
            tokens = self.tok_encode(text)
            for window in lm_utils.get_rolling_token_windows(
                    token_list=tokens, prefix_token=self.prefix_token_id,
                    max_seq_len=self.rolling_length, context_len=1):
                windows.append(lm_utils.make_disjoint_window(window))
                owners.append(n)
        totals = [0.0] * len(requests)
        for owner, (logprob, _) in zip(owners, self.continuation_logprobs(windows, disable_tqdm),
                                       strict=True):
            totals[owner] += logprob
        for request, total in zip(requests, totals, strict=True):
            self.cache_hook.add_partial("loglikelihood_rolling", (request.args[0],), total)
        return totals

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        """Each context's continuation, cut before the first of its ``until`` strings.

        Generation kwargs (the harness's names): ``until`` (a string or list; default the
        end-of-text text), ``max_gen_toks`` (256), ``do_sample`` (default: temperature > 0),
        ``temperature``, ``top_p``, ``top_k``; ValueError naming any other.  Requests with
        the same kwargs run together, ``batch_size`` at a time (``models/generate.py``: a
        row stops at the end-of-text token).  With a context limit (learned positions or
        ``max_length``) a context keeps its last ``max_length - max_gen_toks`` tokens (at
        least one), so that the continuation fits, as the harness's HFLM does.
        """
        answers: list[str] = [""] * len(requests)
        groups: dict[str, list[int]] = {}
        for n, request in enumerate(requests):
            groups.setdefault(repr(sorted(request.args[1].items())), []).append(n)
        bar = tqdm(total=len(requests), disable=disable_tqdm, desc="generate_until")
        for members in groups.values():
            kwargs = dict(requests[members[0]].args[1])
            until = kwargs.pop("until", None) or [self.tok_decode([self.eot_token_id])]
            until = [until] if isinstance(until, str) else list(until)
            max_new = int(kwargs.pop("max_gen_toks", DEFAULT_MAX_GEN_TOKS))
            temperature = float(kwargs.pop("temperature", 0.0) or 0.0)
            sample = bool(kwargs.pop("do_sample", temperature > 0))
            sampling = {"temperature": (temperature or 1.0) if sample else 0.0,
                        "top_p": float(kwargs.pop("top_p", None) or 1.0),
                        "top_k": kwargs.pop("top_k", None)}
            if kwargs:
                raise ValueError(f"generate_until: KitLM does not take the generation "
                                 f"kwargs {sorted(kwargs)} (it takes until, max_gen_toks, "
                                 "do_sample, temperature, top_p, top_k)")
            keep = None if self.max_length is None else max(1, self.max_length - max_new)
            for start in range(0, len(members), self.batch_size):
                rows = members[start:start + self.batch_size]
                prompts = [self.tok_encode(requests[n].args[0]) or [self.prefix_token_id]
                           for n in rows]
                if keep is not None:
                    prompts = [p[-keep:] for p in prompts]
                outputs = generate(self.model, prompts, max_new, self.lm_tokenizer.eot_token,
                                   **sampling)
                for n, output in zip(rows, outputs, strict=True):
                    text = self.tok_decode(output)
                    for stop in until:
                        text = text.split(stop)[0] if stop else text
                    answers[n] = text
                    self.cache_hook.add_partial("generate_until", requests[n].args, text)
                bar.update(len(rows))
        bar.close()
        return answers

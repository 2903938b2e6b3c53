"""Producers for the task heads (handout 6): the sentiment classifier, the paraphrase
cloze and `sample_next`.

The heads run on `trusted.stub_gpt`, never on the submission's `GPT2Model`, so a case here
grades the head alone.  params: B, T, lengths (real tokens per row), seed; and per
producer the sizes below.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autograder.producers import to_numpy, trusted
from autograder.producers.model import seed_parameters

VOCAB, WIDTH = 23, 8


def _batch(params: dict[str, Any]):
    """Seeded ids [B, T] and the right-padded attention mask [B, T] of `lengths`."""
    import torch

    generator = torch.Generator().manual_seed(params["seed"])
    B, T = params["B"], params["T"]
    ids = torch.randint(0, VOCAB, (B, T), generator=generator)
    lengths = torch.tensor(params.get("lengths") or [T] * B)
    return ids, (torch.arange(T)[None, :] < lengths[:, None]).long()


def sentiment(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`GPT2SentimentClassifier.forward`: eval logits [B, num_labels] ("out") and, with
    params["dropout"], the training-mode logits ("train") with `self.dropout` replaced by
    a fixed mask (0 or 1/(1-p) per element of last_token), judged by value."""
    import torch

    from classifier import GPT2SentimentClassifier

    p = params.get("dropout", 0.0)
    model = GPT2SentimentClassifier(trusted.stub_gpt(VOCAB, WIDTH, params["seed"]),
                                    params["num_labels"], p)
    names = seed_parameters(model.classifier, params["seed"])
    ids, mask = _batch(params)
    result = {"out": to_numpy(model.eval()(ids, mask), "class logits"), **names}
    if p:
        generator = torch.Generator().manual_seed(params["seed"] + 1)
        model.dropout = trusted.fixed_dropout(
            (torch.rand(params["B"], WIDTH, generator=generator) >= p) / (1 - p))
        with torch.no_grad():
            result["train"] = to_numpy(model.train()(ids, mask), "training-mode logits")
    return result


def paraphrase(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`ParaphraseGPT.forward`: the cloze logits [B, 2] at params["answer_ids"]."""
    from paraphrase_detection import ParaphraseGPT

    model = ParaphraseGPT(trusted.stub_gpt(VOCAB, WIDTH, params["seed"]), params["answer_ids"])
    ids, mask = _batch(params)
    return {"out": to_numpy(model.eval()(ids, mask), "cloze logits")}


def sample_next(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """`sample_next` on seeded logits [B, V]: params["draws"] calls in a row on one
    generator (seed + 1), each call's ids [B] stacked into "ids" [draws, B]."""
    import torch

    from models.generate import sample_next as student

    generator = torch.Generator().manual_seed(params["seed"])
    logits = torch.randn(params["B"], params["V"], generator=generator) * params["scale"]
    draws = torch.Generator().manual_seed(params["seed"] + 1)
    ids = [student(logits.clone(), params["temperature"], params["top_p"], draws)
           for _ in range(params["draws"])]
    return {"ids": np.stack([to_numpy(i, "sampled ids") for i in ids])}


PRODUCERS = {"sentiment_head": sentiment, "paraphrase_cloze": paraphrase,
             "sample_next": sample_next}

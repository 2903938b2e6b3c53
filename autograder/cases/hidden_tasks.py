"""Hidden cases for the task heads (staff-only): the sentiment classifier, the paraphrase
cloze and `sample_next`, each on the trusted stand-in GPT (`trusted.stub_gpt`)."""

from __future__ import annotations

from autograder.case import Case
from autograder.cases.visible import CLOZE, SENTIMENT
from autograder.cases.visible import sample_case as _sample

CASES = [
    Case("sentiment/padded", "sentiment_head",
         {"B": 3, "T": 5, "lengths": [5, 2, 1], "num_labels": 5, "seed": 81}, 3.0,
         ("sentiment_head",), "sentiment: 5 classes from the last real token of each row",
         grades=(SENTIMENT,)),
    Case("sentiment/dropout", "sentiment_head",
         {"B": 4, "T": 3, "lengths": [3, 1, 2, 3], "num_labels": 2, "dropout": 0.5,
          "seed": 82}, 2.0, ("sentiment_head", "sentiment_dropout"), "sentiment: dropout (a fixed mask) before the linear layer, in training only",
         grades=(SENTIMENT,)),
    Case("paraphrase/cloze", "paraphrase_cloze",
         {"B": 3, "T": 6, "lengths": [6, 4, 1], "answer_ids": [7, 3], "seed": 83}, 3.0,
         ("cloze",), "paraphrase: next-token logits of [no, yes] at the last real token",
         grades=(CLOZE,)),
    _sample("greedy", "temperature 0 is the argmax", ("sample_greedy",),
            temperature=0.0, top_p=0.5, seed=84),
    _sample("temperature", "softmax(logits / T), one uniform per row",
            ("sample_temperature", "sample_draw"), temperature=0.7, top_p=1.0, seed=85),
    _sample("top_p", "nucleus: the smallest set reaching top_p, renormalised",
            ("sample_temperature", "sample_top_p", "sample_draw"), temperature=1.3,
            top_p=0.6, seed=86),
]

"""The task heads' cases (handout 6): the sentiment classifier, the paraphrase cloze and
`sample_next`, each on the trusted stand-in GPT (`trusted.stub_gpt`).

The cases above the staff block ship with the handout (with their reference outputs);
the hidden cases and the mutants below it are staff-only: the release drops the block.
"""

from __future__ import annotations

from autograder.case import Case, visible_case

SENTIMENT = "classifier.py:GPT2SentimentClassifier.forward"
CLOZE = "paraphrase_detection.py:ParaphraseGPT.forward"
SAMPLE = "models/generate.py:sample_next"


def sample_case(name, title, rules, points=2.0, visibility="after_due_date", **params):
    params = {"B": 4, "V": 12, "scale": 2.0, "draws": 6, **params}
    return Case(f"sampling/{name}", "sample_next", params, points, rules,
                f"sample_next: {title}", visibility=visibility, atol=0.0, rtol=0.0,
                grades=(SAMPLE,))


FORBIDDEN = ("transformers", "peft", "trl")
RULES = {
    "sentiment_head": "sentiment logits are classifier(dropout(last_token)), last_token being "
                      "GPT-2's state at each row's last real token",
    "sentiment_dropout": "the classifier's self.dropout acts on last_token, before the "
                         "linear layer, in training only",
    "cloze": "paraphrase logits are hidden_state_to_token(last_token) at the answer ids, "
             "[no, yes] in that order",
    "sample_greedy": "temperature 0 returns the argmax of each row",
    "sample_temperature": "probabilities are softmax(logits / temperature)",
    "sample_top_p": "top-p keeps the smallest set of most likely tokens whose probability "
                    "reaches top_p, then renormalises",
    "sample_draw": "one u = torch.rand(B, generator=generator) per row; the first token in "
                   "sorted order whose cumulative kept probability exceeds u",
}
CASES = [
    visible_case("sentiment/visible_padded", "sentiment_head",
                 {"B": 2, "T": 4, "lengths": [4, 2], "num_labels": 3, "seed": 153}, 2.0,
                 ("sentiment_head",), "sentiment from the last real token of each row",
                 grades=(SENTIMENT,)),
    visible_case("sentiment/visible_dropout", "sentiment_head",
                 {"B": 2, "T": 3, "lengths": [3, 1], "num_labels": 2, "dropout": 0.5,
                  "seed": 145}, 2.0, ("sentiment_head", "sentiment_dropout"),
                 "sentiment in training mode: dropout (a fixed mask) before the linear layer",
                 grades=(SENTIMENT,)),
    visible_case("paraphrase/visible_cloze", "paraphrase_cloze",
                 {"B": 2, "T": 5, "lengths": [5, 2], "answer_ids": [4, 9], "seed": 146}, 2.0,
                 ("cloze",), "paraphrase: logits of [no, yes] at the last real token",
                 grades=(CLOZE,)),
    sample_case("visible_greedy", "visible: temperature 0 is the argmax", ("sample_greedy",),
                visibility="visible", temperature=0.0, top_p=1.0, seed=147),
    sample_case("visible_top_p", "visible: top-p at temperature 0.8, one uniform per row",
                ("sample_temperature", "sample_top_p", "sample_draw"), visibility="visible",
                temperature=0.8, top_p=0.7, seed=148),
]

### BEGIN STAFF
CASES += [
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
    sample_case("greedy", "temperature 0 is the argmax", ("sample_greedy",),
            temperature=0.0, top_p=0.5, seed=84),
    sample_case("temperature", "softmax(logits / T), one uniform per row",
            ("sample_temperature", "sample_draw"), temperature=0.7, top_p=1.0, seed=85),
    sample_case("top_p", "nucleus: the smallest set reaching top_p, renormalised",
            ("sample_temperature", "sample_top_p", "sample_draw"), temperature=1.3,
            top_p=0.6, seed=86),
]
# name -> (rule, file, reference text, mutated text)
MUTANTS = {
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
}
### END STAFF

"""Preference pairs for DPO (handout 7.3), and the sonnet-form score that ranks them.

The course data has only good examples, so the losing side of each pair is made here,
by documented, seeded rules; `write_pairs` stores them as JSONL (one pair per line, text
unescaped) for a person to read.  A pair is a prompt and two completions of it:

- Sonnets (`sonnet_pairs`): the prompt is a sonnet's first three lines, each followed by a
  newline (the held-out prompt of sonnet generation); `chosen` is the real continuation.
  `rejected` is the fine-tuned model's own continuation when one is given and the
  sonnet-form score ranks it lower, else a corruption of the real one (`CORRUPTIONS`,
  tried in a seeded order until one scores strictly lower than the real sonnet; a
  sonnet no corruption lowers is left out).
- Quora (`quora_pairs`): the prompt is the paraphrase cloze
  (`data.loaders.PARAPHRASE_PROMPT`); `chosen` is the right answer (" yes" for a
  paraphrase, " no" otherwise) and `rejected` the wrong one.

The sonnet-form score lives here, with the pairs it ranks; `dpo.py` also reports it
before and after training.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from data.loaders import PARAPHRASE_ANSWERS, PARAPHRASE_PROMPT, ParaphraseExample

PROMPT_LINES = 3  # the sonnet prompt: its first three lines, as in the held-out files
SONNET_LINES = 14
# Shakespeare's scheme ABAB CDCD EFEF GG as the pairs of line indices that must rhyme.
RHYME_PAIRS = ((0, 2), (1, 3), (4, 6), (5, 7), (8, 10), (9, 11), (12, 13))
SYLLABLES = (8, 12)  # a line of iambic pentameter has 10; this range counts as right


@dataclass(frozen=True)
class Pair:
    id: str
    prompt: str
    chosen: str
    rejected: str
    rule: str  # how `rejected` was made: a CORRUPTIONS key, "model_sample" or "wrong_answer"


# --- the sonnet-form score -------------------------------------------------------------

def _last_word(line: str) -> str:
    words = re.findall(r"[a-z]+(?:'[a-z]+)*", line.lower())
    return words[-1] if words else ""


def rhyme_key(line: str) -> str:
    """The sound a line ends on, by spelling: the last word from its last vowel group on.

    A final silent "e" after a consonant moves the key one vowel group back.  "y" is a
    vowel except at a word's start.  Example: "...my memory." -> "y"; "...never die," ->
    "ie"; "...desire increase," -> "ease"; "...thy brow" -> "ow".
    """
    word = _last_word(line)
    if not word:
        return ""
    vowels = "[aeiou]|(?<=.)y"
    silent_e = re.search(rf"(?:{vowels})+[^aeiouy]+e$", word)
    if silent_e and not word.endswith(("ee", "le")):
        return silent_e.group(0)
    match = re.search(rf"(?:{vowels})+[^aeiouy]*$", word)
    return match.group(0) if match else word


def rhymes(a: str, b: str) -> bool:
    """Two lines rhyme when their rhyme keys match or their last words share 3 letters."""
    key_a, key_b = rhyme_key(a), rhyme_key(b)
    if not key_a or not key_b:
        return False
    end_a, end_b = _last_word(a), _last_word(b)
    return key_a == key_b or (min(len(end_a), len(end_b)) >= 3 and end_a[-3:] == end_b[-3:])


def syllables(line: str) -> int:
    """Vowel groups per word ("y" counts after a word's first letter), less a silent final
    "e" (after a consonant, not "-le") in words of more than one group."""
    total = 0
    for word in re.findall(r"[a-z]+", line.lower()):
        groups = len(re.findall(r"(?:[aeiou]|(?<=.)y)+", word))
        if groups > 1 and re.search(r"[^aeiouy]e$", word) and not word.endswith("le"):
            groups -= 1
        total += max(groups, 1)
    return total


def sonnet_form_score(text: str) -> float:
    """How much `text` has a Shakespearean sonnet's form, in [0, 1]: the mean of

    - lines: 1 - |n - 14| / 14 (floored at 0) for n non-blank lines;
    - rhyme: the share of the 7 rhyme pairs of ABAB CDCD EFEF GG that rhyme (`rhymes`);
    - length: the share of lines with 8..12 syllables (`syllables`).
    Example: a 14-line sonnet whose pairs all rhyme and whose lines all have 10 syllables
    scores 1; the same sonnet cut to 7 lines scores (0.5 + 2/7 + 1) / 3.
    """
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return 0.0
    count = max(0.0, 1 - abs(len(lines) - SONNET_LINES) / SONNET_LINES)
    rhyme = sum(j < len(lines) and rhymes(lines[i], lines[j])
                for i, j in RHYME_PAIRS) / len(RHYME_PAIRS)
    low, high = SYLLABLES
    length = sum(low <= syllables(line) <= high for line in lines) / len(lines)
    return (count + rhyme + length) / 3


# --- corruptions of a continuation ------------------------------------------------------
# Each takes the continuation's lines (the prompt's excluded), a seeded Random, and the
# line-end words of the whole corpus, and returns new lines.

def _shuffled_lines(lines: list[str], rng: random.Random, words: list[str]) -> list[str]:
    shuffled = lines[:]
    rng.shuffle(shuffled)
    return shuffled


def _truncated(lines: list[str], rng: random.Random, words: list[str]) -> list[str]:
    return lines[:rng.randint(1, max(1, len(lines) // 2))]


def _repeated_lines(lines: list[str], rng: random.Random, words: list[str]) -> list[str]:
    """One line also takes the place of the 2 or 3 lines after it."""
    start = rng.randrange(len(lines))
    span = range(start + 1, min(len(lines), start + 1 + rng.randint(2, 3)))
    return [lines[start] if index in span else line for index, line in enumerate(lines)]


def _broken_rhyme(lines: list[str], rng: random.Random, words: list[str]) -> list[str]:
    """The second line of each rhyme pair inside the continuation ends on a corpus line-end
    word (drawn until one rhymes neither with its partner nor with its own last word)."""
    broken = lines[:]
    for first, second in RHYME_PAIRS:
        i, j = first - PROMPT_LINES, second - PROMPT_LINES
        last = _last_word(lines[j]) if 0 <= i and j < len(lines) else ""
        if not last:
            continue
        for _ in range(100):
            word = rng.choice(words)
            if not rhymes(word, lines[i]) and not rhymes(word, last):
                cut = lines[j].lower().rindex(last)
                broken[j] = lines[j][:cut] + word + lines[j][cut + len(last):]
                break
    return broken


CORRUPTIONS: dict[str, Callable[[list[str], random.Random, list[str]], list[str]]] = {
    "shuffled_lines": _shuffled_lines,
    "truncated": _truncated,
    "repeated_lines": _repeated_lines,
    "broken_rhyme": _broken_rhyme,
}


def split_sonnet(text: str) -> tuple[str, str]:
    """(prompt: the first 3 lines, each + "\\n"; continuation: the other lines, "\\n"-joined)."""
    lines = text.split("\n")
    return "".join(line + "\n" for line in lines[:PROMPT_LINES]), "\n".join(lines[PROMPT_LINES:])


def sonnet_pairs(sonnets: Sequence[tuple[int, str]], seed: int,
                 samples: dict[int, str] | None = None) -> list[Pair]:
    """One pair per sonnet of [(number, text)] with more lines than the prompt (module doc).

    `samples` maps a sonnet number to the model's continuation of its prompt.  The
    corruption order of sonnet n is drawn from random.Random(f"{seed}:{n}"), so a sonnet's
    pair does not depend on the other sonnets or on their order.
    """
    words = sorted({_last_word(line) for _, text in sonnets for line in text.split("\n")} - {""})
    pairs = []
    for number, text in sonnets:
        prompt, chosen = split_sonnet(text)
        if not chosen.strip():
            continue
        target = sonnet_form_score(prompt + chosen)
        sample = (samples or {}).get(number)
        if sample is not None and sample.strip() and sonnet_form_score(prompt + sample) < target:
            pairs.append(Pair(f"sonnet-{number}", prompt, chosen, sample, "model_sample"))
            continue
        rng = random.Random(f"{seed}:{number}")
        for rule in rng.sample(sorted(CORRUPTIONS), len(CORRUPTIONS)):
            lines = CORRUPTIONS[rule](chosen.split("\n"), rng, words)
            rejected = "\n".join(lines)
            if sonnet_form_score(prompt + rejected) < target:
                pairs.append(Pair(f"sonnet-{number}", prompt, chosen, rejected, rule))
                break
    return pairs


def quora_pairs(examples: Sequence[ParaphraseExample]) -> list[Pair]:
    """The paraphrase cloze with the right answer chosen and the wrong one rejected.

    Unlabelled examples are refused (ValueError naming the id).
    """
    pairs = []
    for e in examples:
        if e.label is None:
            raise ValueError(f"quora example {e.id} has no label; pairs need labelled data")
        right, wrong = PARAPHRASE_ANSWERS[e.label], PARAPHRASE_ANSWERS[1 - e.label]
        pairs.append(Pair(f"quora-{e.id}", PARAPHRASE_PROMPT.format(e.sentence1, e.sentence2),
                          right, wrong, "wrong_answer"))
    return pairs


def write_pairs(path: str, pairs: Sequence[Pair]) -> None:
    """One JSON object per line: id, prompt, chosen, rejected, rule (UTF-8, unescaped)."""
    with open(path, "w", encoding="utf-8") as f:
        for pair in pairs:
            f.write(json.dumps(asdict(pair), ensure_ascii=False) + "\n")


def read_pairs(path: str) -> list[Pair]:
    """Read `write_pairs` output; a bad line raises ValueError naming the file and line."""
    pairs = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                pairs.append(Pair(**json.loads(line)))
            except (ValueError, TypeError) as error:
                raise ValueError(f"{path}:{number}: not a pair ({error})") from error
    return pairs

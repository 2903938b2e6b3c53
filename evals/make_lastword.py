"""Make a LAMBADA-style last-word task from any text: the rows ``kit_lastword`` reads.

    python evals/make_lastword.py ../shared/data/tinyshakespeare/input.txt --out lastword.jsonl
    python evaluate_lm.py --model out/pretrain --harness kit_lastword \\
        --harness_metadata '{"lastword": "lastword.jsonl"}'

The text's words (whitespace-separated; line breaks become single spaces) are cut into
passages of at least ``--words`` words, each ending at the first word after that made
only of letters (``str.isalpha``: "rose", not "rose," or "2"), which the model must
predict from the rest.  Passages do not overlap.  Each line of the output is
``{"text": passage}``, the format of EleutherAI/lambada_openai.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.helpformat import HelpFormatter


def lastword_passages(text: str, words: int, limit: int | None = None) -> list[str]:
    """Passages of at least ``words`` words of ``text``, each ending at a letters-only word.

    >>> lastword_passages("a b, c d. e f", 2)
    ['a b, c', 'd. e']
    """
    if words < 2:
        raise ValueError(f"a passage needs at least 2 words (context and target), got {words}")
    passages, current = [], []
    for word in text.split():
        current.append(word)
        if len(current) >= words and word.isalpha():
            passages.append(" ".join(current))
            current = []
            if limit is not None and len(passages) == limit:
                break
    return passages


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(prog="make_lastword.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("text", help="UTF-8 text file")
    parser.add_argument("--out", required=True, help="the JSONL file to write")
    parser.add_argument("--words", type=int, default=50,
                        help="words per passage, at least (default: %(default)s)")
    parser.add_argument("--max_examples", type=int, help="keep the first N passages")
    args = parser.parse_args(argv)
    try:
        text = Path(args.text).read_text(encoding="utf-8")
        passages = lastword_passages(text, args.words, args.max_examples)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        parser.exit(2, f"make_lastword.py: error: {args.text}: {error}\n")
    if not passages:
        parser.exit(2, f"make_lastword.py: error: {args.text}: no passage of {args.words} "
                    "words ends in a letters-only word; pass a longer text or a smaller --words\n")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps({"text": p}, ensure_ascii=False) + "\n" for p in passages),
                   encoding="utf-8")
    print(f"wrote {len(passages)} passages to {out}")
    return passages


if __name__ == "__main__":
    main()

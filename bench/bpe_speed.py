"""bpe.py speed next to Rust tokenizers, in one process: training and encoding, times and ratios.

    python -m bench.bpe_speed [--data ../shared/data] [--repeat 3]   # from the repository root

Training: vocabulary 500 on the first ~130 KB of WikiText-2 valid, and vocabulary 10,000 on
WikiText-2 valid+test (~2.4 MB), next to the `tokenizers` library's byte-level BPE trainer on
the same file. Encoding: MB/s on WikiText-2 valid+test with the GPT-2 merges, next to tiktoken
(one thread) and transformers' GPT2TokenizerFast. "cold" starts from an empty pre-token cache,
"warm" encodes the same text again. Each figure is the best of --repeat runs.
It runs as a module from the repository root because tiktoken's GPT-2 encoding comes from
the tests' builder (``tests/reference_tokenizers.py``), its one home.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import bpe
from training.args import POSITIVE_INT
from training.helpformat import HelpFormatter

try:
    from tests.reference_tokenizers import EOT, tiktoken_gpt2
except ModuleNotFoundError as error:  # run as a script, tests/ is not on the path
    raise SystemExit("run it from the repository root as a module: "
                     "python -m bench.bpe_speed") from error

REPO = Path(__file__).resolve().parents[1]

TARGETS = {500: 0.3, 10_000: 30.0}  # training seconds by vocabulary size, from issue 3


def best_times(
    cases: dict[str, Callable[[], Callable[[], object]]], repeat: int
) -> dict[str, float]:
    """Fastest wall time of each case over ``repeat`` rounds, in seconds.

    ``cases[name]()`` is untimed setup returning the call to time. The cases take turns in
    each round, so a change in machine load affects them alike.
    """
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(repeat):
        for name, setup in cases.items():
            call = setup()
            start = time.perf_counter()
            call()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def train_with_tokenizers(path: Path, vocab_size: int) -> None:
    """The `tokenizers` library's BPE trainer with GPT-2 byte-level pre-tokenization."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train([str(path)], trainer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    default_data = os.environ.get("BUILD_GPT2_DATA", REPO.parent / "shared" / "data")
    parser.add_argument("--data", type=Path, default=Path(default_data), help="course data folder")
    parser.add_argument("--repeat", type=POSITIVE_INT, default=3,
                        help="runs per figure; the best counts")
    args = parser.parse_args()
    wiki = [args.data / "wikitext-2" / "valid.txt", args.data / "wikitext-2" / "test.txt"]
    gpt2_dir = args.data / "gpt2-tokenizer"
    for path in [*wiki, gpt2_dir / "vocab.json"]:
        if not path.is_file():
            sys.exit(f"{path} not found: pass --data with the course data folder (see README)")

    print(f"bpe.py speed on {os.cpu_count()} CPUs, best of {args.repeat}")
    with tempfile.TemporaryDirectory() as tmp:
        valid = wiki[0].read_bytes()
        small = Path(tmp, "wiki-130k.txt")
        small.write_bytes(valid[: valid.index(b"\n", 130_000) + 1])
        both = Path(tmp, "wiki-valid-test.txt")
        both.write_bytes(valid + wiki[1].read_bytes())

        print(f"\n{'training':<44} {'bpe.py':>9} {'tokenizers':>11} {'ratio':>7} {'target':>8}")
        for path, vocab_size, workers in [
            (small, 500, None),
            (both, 10_000, None),
            (both, 10_000, 1),
        ]:
            times = best_times(
                {
                    "ours": lambda p=path, v=vocab_size, w=workers: partial(
                        bpe.train_bpe, p, v, [EOT], workers=w
                    ),
                    "rust": lambda p=path, v=vocab_size: partial(train_with_tokenizers, p, v),
                },
                args.repeat,
            )
            ours, rust = times["ours"], times["rust"]
            processes = "1 process" if workers == 1 else "default processes"
            label = f"vocab {vocab_size:,} on {path.stat().st_size / 1e6:.2f} MB, {processes}"
            target = TARGETS[vocab_size]
            print(
                f"{label:<44} {ours:>8.3f}s {rust:>10.3f}s {ours / rust:>6.1f}x "
                f"{target:>5.1f}s {'ok' if ours <= target else 'MISSED'}"
            )

        text = both.read_bytes().decode("utf-8")
        megabytes = len(text.encode("utf-8")) / 1e6
        from transformers import GPT2TokenizerFast

        hf = GPT2TokenizerFast.from_pretrained(str(gpt2_dir)).backend_tokenizer
        tik = tiktoken_gpt2(gpt2_dir)

        def fresh() -> bpe.Tokenizer:
            return bpe.Tokenizer.load(gpt2_dir, [EOT])

        warm = fresh()
        expected = tik.encode_ordinary(text)
        assert warm.encode(text) == expected == hf.encode(text).ids, "the encoders disagree"
        times = best_times(
            {
                "tiktoken (1 thread)": lambda: partial(tik.encode_ordinary, text),
                "transformers GPT2TokenizerFast": lambda: partial(hf.encode, text),
                "bpe.py cold cache": lambda: partial(fresh().encode, text),
                "bpe.py warm cache": lambda: partial(warm.encode, text),
                "bpe.py loading the GPT-2 files": lambda: fresh,
            },
            args.repeat,
        )
        load = times.pop("bpe.py loading the GPT-2 files")
        rates = {name: megabytes / seconds for name, seconds in times.items()}
        print(
            f"\nencoding {megabytes:.2f} MB of WikiText-2 with the GPT-2 merges "
            f"({len(expected):,} tokens, identical ids)"
        )
        print(f"{'encoder':<34} {'MB/s':>9} {'vs tiktoken':>12}")
        for name, rate in rates.items():
            print(f"{name:<34} {rate:>9.2f} {rate / rates['tiktoken (1 thread)']:>11.0%}")
        print(
            f"(bpe.py loads the GPT-2 files in {load:.2f}s, not counted above; target: "
            f"cold cache >= 50% of tiktoken)"
        )


if __name__ == "__main__":
    main()

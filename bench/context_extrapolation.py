"""Bits per byte past the training length: ALiBi against learned positions (Press et al.).

    python bench/context_extrapolation.py --data_dir data/shakespeare_char \\
        --checkpoint alibi=out/alibi --checkpoint learned=out/learned

Each checkpoint scores the ``--split`` of a prepared corpus (``data/prepare_lm.py``) with
windows of 1x, 2x, 4x and 8x its training length (disjoint windows, as
``evaluate_lm.py --block_size N --stride N``).  A model with learned positions has no row
past its trained length, so its longer windows print "refused".  Prints a Markdown table.
"""

from __future__ import annotations

import argparse

from evaluate_lm import evaluate_ids
from training.helpformat import HelpFormatter
from training.lm_data import open_split
from training.loading import load_model

FACTORS = (1, 2, 4, 8)


def main(argv: list[str] | None = None) -> dict[str, dict[int, float | None]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--data_dir", required=True, help="a data/prepare_lm.py folder")
    parser.add_argument("--split", default="val", choices=("train", "val"))
    parser.add_argument("--checkpoint", action="append", required=True, metavar="NAME=PATH",
                        help="a pretrain.py checkpoint or folder, named; repeat it")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    ids = open_split(args.data_dir, args.split)
    table: dict[str, dict[int, float | None]] = {}
    for entry in args.checkpoint:
        name, _, path = entry.partition("=")
        if not path:
            parser.error(f"--checkpoint {entry!r}: write NAME=PATH")
        model, tokenizer = load_model(path, args.data_dir)
        trained = model.config.max_position_embeddings
        table[name] = {}
        for factor in FACTORS:
            block = factor * trained
            try:
                figures = evaluate_ids(model, tokenizer, ids, block, block, 4, args.device)
                table[name][factor] = figures["bits_per_byte"]
            except ValueError:
                table[name][factor] = None
    print(f"| model ({args.split} bits per byte) | "
          + " | ".join(f"{f}x" for f in FACTORS) + " |")
    print("| --- |" + " ---: |" * len(FACTORS))
    for name, row in table.items():
        cells = ["refused" if row[f] is None else f"{row[f]:.4f}" for f in FACTORS]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return table


if __name__ == "__main__":
    main()

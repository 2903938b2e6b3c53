"""Perplexity and bits per byte of a language model on a text file.

    python evaluate_lm.py --model out/ckpt.pt --text ../shared/data/tinyshakespeare/input.txt
    python evaluate_lm.py --model gpt2 --text ../shared/data/wikitext-2/test.txt --stride 512
    python evaluate_lm.py --model CHECKPOINT_DIR --text FILE --tokenizer DIR --json out.json
    python evaluate_lm.py --model out/alibi --data_dir data/shakespeare_char --split val \\
        --block_size 1024        # ALiBi, rope, none: any length, past the trained one

``--model`` is one of ours (a ``ckpt.pt``/``best.pt`` that ``pretrain.py`` wrote, or its
folder) or a Hugging Face GPT-2 (a hub name or a ``save_pretrained`` folder). The text is
scored with strided sliding windows (``training/perplexity.py``): each window holds
``--block_size`` tokens and scores only the tokens that are new in it. The result, printed
and written with ``--json``: ``tokens`` (scored), ``bytes`` (UTF-8 bytes of the scored
tokens' text), ``nll_nats`` (summed), ``perplexity``, ``bits_per_token`` and
``bits_per_byte`` = nll_nats / (ln 2 * bytes), which compares models with different
tokenizers. ``--data_dir DIR --split val|train`` scores a prepared split
(``data/prepare_lm.py``) instead of a text file.

The tokenizer: ``--tokenizer DIR`` (a folder with vocab.json and merges.txt or a Hugging
Face tokenizer.json, or a folder that ``data/prepare_lm.py`` wrote); by default, for one of ours, the corpus folder of its
run (``config["data_dir"]``), for a Hugging Face model its own folder's files or GPT-2's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from models.gpt2 import GPT2Model
from training.lm_data import SPLITS, LMTokenizer, open_split, read_text
from training.loading import load_model
from training.perplexity import lm_metrics, sequence_nll, windows


def evaluate_ids(model: GPT2Model, tokenizer: LMTokenizer, ids: list[int] | np.ndarray,
                 block_size: int, stride: int, batch_size: int = 8,
                 device: str = "cpu") -> dict[str, float | int]:
    """The figures of ``lm_metrics`` for the token ids ``ids`` [N]."""
    largest = int(np.max(ids)) if len(ids) else -1
    if largest >= model.config.vocab_size:
        raise ValueError(f"the tokenizer gives id {largest} but the model's vocabulary "
                         f"has {model.config.vocab_size} tokens; pass the model's --tokenizer")
    nll, count = sequence_nll(model.to(device), ids, block_size, stride, batch_size, device,
                              progress=True)
    scored = [int(t) for _, end, first in windows(len(ids), block_size, stride)
              for t in ids[first:end]]
    return lm_metrics(nll, count, tokenizer.token_bytes(scored))


def evaluate(model: GPT2Model, tokenizer: LMTokenizer, text: str, block_size: int, stride: int,
             batch_size: int = 8, device: str = "cpu") -> dict[str, float | int]:
    """The figures of ``lm_metrics`` for ``text``, plus ``text_tokens`` and ``text_bytes``
    (the whole text; token 0 and the first token of disjoint windows are not scored)."""
    ids = tokenizer.encode(text)
    return {**evaluate_ids(model, tokenizer, ids, block_size, stride, batch_size, device),
            "text_tokens": len(ids), "text_bytes": len(text.encode("utf-8"))}


def main(argv: list[str] | None = None) -> dict[str, float | int]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="ckpt.pt (or its folder), Hugging Face folder, or hub name")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="UTF-8 text file to score")
    source.add_argument("--data_dir", help="a data/prepare_lm.py folder: score its --split "
                        "(already tokenized; its tokenizer counts the bytes)")
    parser.add_argument("--split", choices=SPLITS, default="val",
                        help="the split of --data_dir to score (default: %(default)s)")
    parser.add_argument("--tokenizer", help="tokenizer folder, or a data/prepare_lm.py folder")
    parser.add_argument("--block_size", type=int,
                        help="window length in tokens (default: the model's context; any "
                        "length for ALiBi, rope and no positions, at most the trained "
                        "length for learned positions)")
    parser.add_argument("--stride", type=int, help="tokens between window starts "
                        "(default: half the window)")
    parser.add_argument("--batch_size", type=int, default=8, help="windows per forward pass (8)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    for flag in ("block_size", "stride", "batch_size"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag} must be a positive integer, got {getattr(args, flag)}")
    try:
        text = read_text(args.text) if args.text else None
        ids = None if args.data_dir is None else open_split(args.data_dir, args.split)
        model, tokenizer = load_model(args.model, args.tokenizer or args.data_dir)
        block_size = args.block_size or model.config.max_position_embeddings
        stride = args.stride or max(1, block_size // 2)
        if text is not None:
            result = evaluate(model, tokenizer, text, block_size, stride, args.batch_size,
                              args.device)
        else:
            result = evaluate_ids(model, tokenizer, ids, block_size, stride, args.batch_size,
                                  args.device)
    except (FileNotFoundError, ValueError, OSError) as error:
        parser.exit(2, f"evaluate_lm.py: error: {error}\n")
    scored = {"text": args.text} if text is not None else {"data_dir": args.data_dir,
                                                            "split": args.split}
    result = {"model": args.model, **scored, "block_size": block_size, "stride": stride,
              **result}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()

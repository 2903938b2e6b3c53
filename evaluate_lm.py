"""Perplexity and bits per byte of a language model on a text file.

    python evaluate_lm.py --model out/ckpt.pt --text ../shared/data/tinyshakespeare/input.txt
    python evaluate_lm.py --model gpt2 --text ../shared/data/wikitext-2/test.txt --stride 512
    python evaluate_lm.py --model CHECKPOINT_DIR --text FILE --tokenizer DIR --json out.json

``--model`` is one of ours (a ``ckpt.pt``/``best.pt`` that ``pretrain.py`` wrote, or its
folder) or a Hugging Face GPT-2 (a hub name or a ``save_pretrained`` folder). The text is
scored with strided sliding windows (``training/perplexity.py``): each window holds
``--block_size`` tokens and scores only the tokens that are new in it. The result, printed
and written with ``--json``: ``tokens`` (scored), ``bytes`` (UTF-8 bytes of the scored
tokens' text), ``nll_nats`` (summed), ``perplexity``, ``bits_per_token`` and
``bits_per_byte`` = nll_nats / (ln 2 * bytes), which compares models with different
tokenizers.

The tokenizer: ``--tokenizer DIR`` (a folder with vocab.json and merges.txt or a Hugging
Face tokenizer.json, or a folder that ``data/prepare_lm.py`` wrote); by default, for one of ours, the corpus folder of its
run (``config["data_dir"]``), for a Hugging Face model its own folder's files or GPT-2's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from models.gpt2 import GPT2Model, read_checkpoint
from training.lm_data import (
    LMTokenizer,
    gpt2_tokenizer_dir,
    load_lm_tokenizer,
    load_tokenizer_dir,
    read_text,
)
from training.perplexity import lm_metrics, sequence_nll, windows

CHECKPOINT_NAMES = ("ckpt.pt", "best.pt")  # a folder of ours holds one of these


def our_checkpoint(spec: str) -> Path | None:
    """The checkpoint file ``--model`` names when it is one of ours, else None."""
    path = Path(spec)
    if path.is_file():
        return path
    if path.is_dir() and not (path / "config.json").is_file():
        return next((path / n for n in CHECKPOINT_NAMES if (path / n).is_file()), None)
    return None


def tokenizer_from(folder: str | Path) -> LMTokenizer:
    """A prepared corpus folder's tokenizer, or a folder of tokenizer files."""
    if (Path(folder) / "meta.json").is_file():
        return load_lm_tokenizer(folder)
    return load_tokenizer_dir(folder)


def load_model(spec: str, tokenizer_dir: str | None) -> tuple[GPT2Model, LMTokenizer]:
    """The model ``--model`` names and the tokenizer to score with (see the module doc)."""
    checkpoint = our_checkpoint(spec)
    if checkpoint is not None:
        model = GPT2Model.from_checkpoint(checkpoint)
        data_dir = (read_checkpoint(checkpoint).get("config") or {}).get("data_dir")
        if tokenizer_dir is None and data_dir is None:
            raise ValueError(f"{checkpoint} does not name its corpus folder (config['data_dir']);"
                             " pass --tokenizer DIR, the folder data/prepare_lm.py wrote")
        return model, tokenizer_from(tokenizer_dir or data_dir)
    if Path(spec).is_dir() and (Path(spec) / "config.json").is_file():
        folder = Path(spec)
        own = ((folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()
               or (folder / "tokenizer.json").is_file())
        default = folder if own else None
    elif any(c in spec for c in "/\\") or spec.startswith("."):
        raise FileNotFoundError(f"--model {spec}: no such checkpoint file or folder; pass a "
                                "ckpt.pt, a folder holding one, a Hugging Face checkpoint "
                                "folder, or a hub name like gpt2")
    else:
        default = None
    model = GPT2Model.from_pretrained(spec)
    return model, tokenizer_from(tokenizer_dir or default or gpt2_tokenizer_dir())


def evaluate(model: GPT2Model, tokenizer: LMTokenizer, text: str, block_size: int, stride: int,
             batch_size: int = 8, device: str = "cpu") -> dict[str, float | int]:
    """The figures of ``lm_metrics`` for ``text``, plus ``text_tokens`` and ``text_bytes``
    (the whole text; token 0 and the first token of disjoint windows are not scored)."""
    ids = tokenizer.encode(text)
    if ids and max(ids) >= model.config.vocab_size:
        raise ValueError(f"the tokenizer gives id {max(ids)} but the model's vocabulary has "
                         f"{model.config.vocab_size} tokens; pass the model's --tokenizer")
    nll, count = sequence_nll(model.to(device), ids, block_size, stride, batch_size, device,
                              progress=True)
    scored = [t for _, end, first in windows(len(ids), block_size, stride) for t in ids[first:end]]
    return {**lm_metrics(nll, count, tokenizer.token_bytes(scored)),
            "text_tokens": len(ids), "text_bytes": len(text.encode("utf-8"))}


def main(argv: list[str] | None = None) -> dict[str, float | int]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="ckpt.pt (or its folder), Hugging Face folder, or hub name")
    parser.add_argument("--text", required=True, help="UTF-8 text file to score")
    parser.add_argument("--tokenizer", help="tokenizer folder, or a data/prepare_lm.py folder")
    parser.add_argument("--block_size", type=int,
                        help="window length in tokens (default: the model's context)")
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
        text = read_text(args.text)
        model, tokenizer = load_model(args.model, args.tokenizer)
        block_size = args.block_size or model.config.max_position_embeddings
        stride = args.stride or max(1, block_size // 2)
        result = evaluate(model, tokenizer, text, block_size, stride, args.batch_size,
                          args.device)
    except (FileNotFoundError, ValueError, OSError) as error:
        parser.exit(2, f"evaluate_lm.py: error: {error}\n")
    result = {"model": args.model, "text": args.text, "block_size": block_size,
              "stride": stride, **result}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()

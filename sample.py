"""Sample text from a trained model, with nanoGPT's flags.

    python sample.py --out_dir out/pretrain                     # out/pretrain/ckpt.pt
    python sample.py --out_dir out/pretrain --start "ROMEO:" --num_samples 3 --seed 7
    python sample.py --checkpoint out/pretrain/best.pt --start FILE:prompt.txt
    python sample.py --init_from gpt2 --start "Hello" --temperature 0   # greedy
    python sample.py --checkpoint export/ --top_k 50 --top_p 0.9  # a Hugging Face folder

The model is a ``pretrain.py`` checkpoint (``--out_dir``'s ``ckpt.pt``, or ``--checkpoint``
naming a file or folder) or a Hugging Face model (``--checkpoint`` a folder, or
``--init_from`` a hub name as in nanoGPT).  The tokenizer is found through the checkpoint:
the corpus folder of its run, or the Hugging Face folder's own files (``--tokenizer``
overrides).  Each sample continues ``--start`` (text, or ``FILE:path`` for a file's text)
by up to ``--max_new_tokens`` tokens; it ends early at the end-of-text token.

``--temperature 0`` (or ``--top_k 1``) is greedy decoding, equal to ``transformers``'
``generate(do_sample=False)`` on the model ``export_hf.py`` writes.  Otherwise the logits
keep their ``--top_k`` largest, then the smallest set reaching ``--top_p``, and a token is
drawn at ``--temperature``.  The same ``--seed`` and settings give the same samples.
Models with ALiBi, rope or no positions continue past their training length; learned
positions slide their window.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from models.generate import generate
from training.args import (
    NON_NEGATIVE_FLOAT,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    bounded,
    torch_device,
)
from training.helpformat import HelpFormatter
from training.loading import load_model

SEPARATOR = "---------------"  # nanoGPT prints this after each sample


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sample.py", description=__doc__.split("\n\n")[0],
        formatter_class=HelpFormatter)
    add = parser.add_argument
    add("--out_dir", default="out/pretrain", help="a pretrain.py folder: samples its ckpt.pt")
    add("--checkpoint", default=None, help="instead of --out_dir: a ckpt.pt/best.pt, a folder "
        "holding one, or a Hugging Face folder or hub name")
    add("--init_from", default="resume", help="nanoGPT's: resume (--out_dir or --checkpoint) "
        "or a Hugging Face name such as gpt2")
    add("--tokenizer", default=None, help="override the tokenizer the checkpoint names")
    add("--start", default="\n",
        help="the prompt: text, or FILE:path to read it from a file (default: %(default)r)")
    add("--num_samples", type=POSITIVE_INT, default=10, help="samples to draw")
    add("--max_new_tokens", type=POSITIVE_INT, default=500, help="tokens per sample")
    add("--temperature", type=NON_NEGATIVE_FLOAT, default=0.8, help="0 = greedy")
    add("--top_k", type=NON_NEGATIVE_INT, default=200,
        help="keep the k most likely tokens (0 = all)")
    add("--top_p", type=bounded(float, 0.0, 1.0, low_open=True), default=1.0,
        help="nucleus sampling: keep the smallest set reaching this probability")
    add("--seed", type=int, default=1337, help="random seed")
    add("--device", type=torch_device, default="cuda" if torch.cuda.is_available() else "cpu",
        help="cpu, cuda or cuda:N (default: cuda when available, else cpu)")
    return parser


def read_start(start: str) -> str:
    """The prompt ``--start`` names: its text, or the text of the file after ``FILE:``."""
    if not start.startswith("FILE:"):
        return start
    path = Path(start[len("FILE:"):])
    if not path.is_file():
        raise FileNotFoundError(f"--start {start}: no such file {path}")
    return path.read_text(encoding="utf-8")


def model_spec(args: argparse.Namespace) -> str:
    """What to load: --init_from's name, else --checkpoint, else --out_dir."""
    if args.init_from != "resume":
        return args.init_from
    return args.checkpoint or args.out_dir


def main(argv: list[str] | None = None) -> list[str]:
    """Print the samples (each followed by nanoGPT's separator) and return them."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        prompt = read_start(args.start)
        model, tokenizer = load_model(model_spec(args), args.tokenizer)
        ids = tokenizer.encode(prompt)
        if not ids:
            raise ValueError("--start is empty: the model needs at least one prompt token "
                             "(the default is a newline)")
    except (FileNotFoundError, ValueError, OSError) as error:
        parser.exit(2, f"sample.py: error: {error}\n")
    model = model.to(args.device).eval()
    rows = generate(model, [ids] * args.num_samples, args.max_new_tokens, tokenizer.eot_token,
                    args.temperature, args.top_p, args.seed, top_k=args.top_k or None)
    samples = [tokenizer.decode(ids + row) for row in rows]
    for text in samples:
        print(text)
        print(SEPARATOR)
    return samples


if __name__ == "__main__":
    main()

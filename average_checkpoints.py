"""Average the weights of several checkpoints into a new one (``training/averaging.py``).

    python average_checkpoints.py --dir out/run --last 5 --out out/run/avg.pt \\
        --data_dir data/shakespeare_char
    python average_checkpoints.py --checkpoints a.pt b.pt c.pt --out avg.pt

``--dir D --last N`` takes the N checkpoints of D with the highest ``iter_num`` (a run of
``pretrain.py --keep_checkpoints N`` leaves them as ``ckpt_<iter>.pt``); ``--checkpoints``
takes a list, oldest first.  The averaged model's validation loss is printed beside the
last checkpoint's: the mean NLL per token of the validation split of ``--data_dir`` (a
``data/prepare_lm.py`` folder; default: the ``data_dir`` the last checkpoint was trained
on), in disjoint windows of the model's context.
"""

from __future__ import annotations

import argparse
import sys

from models.gpt2 import GPT2Model
from training.args import POSITIVE_INT
from training.averaging import average_checkpoints, last_checkpoints
from training.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from training.helpformat import HelpFormatter
from training.lm_data import open_split
from training.perplexity import sequence_nll


def validation_loss(model: GPT2Model, data_dir: str, max_tokens: int | None) -> float:
    """Mean NLL per scored token of the first ``max_tokens`` (all by default) tokens of the
    validation split, in disjoint windows of the model's context."""
    ids = open_split(data_dir, "val")[:max_tokens]
    block_size = min(model.config.max_position_embeddings, len(ids))
    nll, count = sequence_nll(model, ids, block_size, block_size)
    return nll / count


def trained_on(path: str) -> str | None:
    """The ``data_dir`` flag the checkpoint at ``path`` was trained with, if it records one."""
    return (load_checkpoint(path).get("config") or {}).get("data_dir")


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoints", nargs="+", help="checkpoint files, oldest first")
    which.add_argument("--dir", help="folder of checkpoints; with --last N")
    parser.add_argument("--last", type=int, help="how many of --dir's latest checkpoints")
    parser.add_argument("--out", required=True, help="where to write the averaged checkpoint")
    parser.add_argument("--data_dir", help="prepared corpus for the validation losses "
                        "(default: the one the last checkpoint was trained on)")
    parser.add_argument("--eval_tokens", type=POSITIVE_INT,
                        help="score only this many validation tokens")
    args = parser.parse_args(argv)
    if args.dir and (args.last is None or args.last < 1):
        parser.error("--dir needs --last N, a positive number of checkpoints")
    if args.checkpoints and args.last is not None:
        parser.error("--last goes with --dir; --checkpoints averages every file it lists")
    try:
        paths = args.checkpoints or last_checkpoints(args.dir, args.last)
        save_checkpoint(average_checkpoints(paths), args.out)
        print(f"averaged {len(paths)} checkpoints ({', '.join(map(str, paths))}) into "
              f"{args.out}", file=sys.stderr)
        data_dir = args.data_dir or trained_on(paths[-1])
        if data_dir is None:
            print(f"validation loss not reported: {paths[-1]} records no data_dir; pass "
                  "--data_dir", file=sys.stderr)
            return {}
        losses = {name: validation_loss(model_from_checkpoint(path), data_dir,
                                        args.eval_tokens)
                  for name, path in (("last", paths[-1]), ("average", args.out))}
    except (FileNotFoundError, ValueError) as error:
        parser.exit(2, f"average_checkpoints.py: error: {error}\n")
    print(f"validation loss: last checkpoint {losses['last']:.4f} ({paths[-1]}), "
          f"average of {len(paths)} {losses['average']:.4f} ({args.out})")
    return losses


if __name__ == "__main__":
    main()

"""Perplexity and bits per byte of a language model on a text file.

    python evaluate_lm.py --model out/ckpt.pt --data_dir data/shakespeare_char --split val
    python evaluate_lm.py --model gpt2 --text ../shared/data/wikitext-2/test.txt --stride 512
    python evaluate_lm.py --model CHECKPOINT_DIR --text FILE --tokenizer DIR --json out.json
    python evaluate_lm.py --model out/alibi --data_dir data/shakespeare_char --split val \\
        --block_size 1024        # ALiBi, rope, none: any length, past the trained one
    python evaluate_lm.py --model out/ckpt.pt --harness kit_text --text FILE --json res.json
    python evaluate_lm.py --model gpt2 --harness lambada_openai,hellaswag   # needs the hub

``--model`` is one of ours (a ``ckpt.pt``/``best.pt`` that ``pretrain.py`` wrote, or its
folder) or a Hugging Face GPT-2 (a hub name or a ``save_pretrained`` folder). The text is
scored with strided sliding windows (``training/perplexity.py``): each window holds
``--block_size`` tokens and scores only the tokens that are new in it. The result, printed
and written with ``--json``: ``tokens`` (scored), ``bytes`` (UTF-8 bytes of the scored
tokens' text), ``nll_nats`` (summed), ``perplexity``, ``bits_per_token`` and
``bits_per_byte`` = nll_nats / (ln 2 * bytes), which compares models with different
tokenizers. ``--data_dir DIR --split val|train`` scores a prepared split
(``data/prepare_lm.py``) instead of a text file.  ``--quantize int8|bf16`` scores the model
quantized (``modules/quantize.py``: int8 weights in the transformer blocks, or everything in
bfloat16); the result also holds ``quantize`` and ``model_bytes`` (what the model takes).

The tokenizer: ``--tokenizer DIR`` (a folder with vocab.json and merges.txt or a Hugging
Face tokenizer.json, or a folder that ``data/prepare_lm.py`` wrote); by default, for one of ours, the corpus folder of its
run (``config["data_dir"]``), for a Hugging Face model its own folder's files or GPT-2's.

``--harness TASKS`` (comma-separated) runs lm-evaluation-harness (``lm_eval.simple_evaluate``)
on the model through ``training/harness.py``'s ``KitLM`` instead, and prints and writes with
``--json`` the harness's results JSON.  The kit's offline tasks (``evals/``) are always
included: ``kit_text`` scores ``--text FILE`` in rolling windows, ``kit_lastword`` the file
that ``evals/make_lastword.py`` writes (``--harness_metadata '{"lastword": "FILE"}'``).
``--harness_include DIR`` adds a folder of task YAMLs; the harness's own tasks
(``lambada_openai``, ``piqa``, ``hellaswag``, ``wikitext``, ...) download their data from
the hub.  ``--block_size`` then caps the tokens one forward pass sees (contexts lose their
oldest tokens) and ``--batch_size`` is the sequences per pass.  See docs/harness.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.gpt2 import GPT2Model
from modules.quantize import model_bytes, quantize_model
from training.args import add_quantize_args, torch_device
from training.helpformat import HelpFormatter
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


def harness_tasks(tasks: list[str], include: str | None,
                  metadata: dict[str, Any]) -> tuple[Any, list[str]]:
    """The ``lm_eval`` ``TaskManager`` that knows ``tasks`` (names or globs such as
    ``kit_*``) and the task names they match: the kit's ``evals/`` and ``include``, plus
    the harness's own tasks only when one of ``tasks`` matches none there (indexing them
    takes seconds).  ValueError naming the tasks that match nothing."""
    from lm_eval.tasks import TaskManager

    from evals import TASKS_DIR

    paths = [str(TASKS_DIR)] + ([include] if include else [])
    manager = TaskManager(include_path=paths, include_defaults=False, metadata=metadata)
    if any(not manager.match_tasks([task]) for task in tasks):
        manager = TaskManager(include_path=paths, metadata=metadata)
    unknown = [task for task in tasks if not manager.match_tasks([task])]
    if unknown:
        raise ValueError(f"unknown harness task(s) {', '.join(unknown)}: not in evals/ "
                         f"(kit_lastword, kit_text){', ' + include if include else ''} nor "
                         "the harness's own tasks (`lm_eval ls tasks` lists them)")
    return manager, manager.match_tasks(tasks)


def evaluate_harness(model: GPT2Model, tokenizer: LMTokenizer, tasks: list[str],
                     include: str | None = None, metadata: dict[str, Any] | None = None,
                     limit: int | None = None, batch_size: int = 8, device: str = "cpu",
                     max_length: int | None = None) -> dict[str, Any]:
    """``lm_eval.simple_evaluate`` of ``KitLM(model, tokenizer)`` on ``tasks`` (names or
    globs; zero-shot,
    first ``limit`` documents of each): the harness's results dict (``results``,
    ``configs``, ``versions``, ``n-shot``, ...), JSON-ready."""
    from lm_eval import simple_evaluate
    from lm_eval.utils import handle_non_serializable

    from training.harness import KitLM

    lm = KitLM(model, tokenizer, batch_size=batch_size, device=device, max_length=max_length)
    manager, names = harness_tasks(tasks, include, metadata or {})
    results = simple_evaluate(lm, tasks=names, limit=limit, log_samples=False,
                              task_manager=manager)
    return json.loads(json.dumps(results, default=handle_non_serializable))


def json_object(text: str) -> dict[str, Any]:
    """``--harness_metadata``: a JSON object, else argparse's error quoting the text."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error.msg}): {text!r}") from error
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--model", required=True,
                        help="ckpt.pt (or its folder), Hugging Face folder, or hub name")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--text", help="UTF-8 text file to score (with --harness: the text "
                        "of the kit_text task)")
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
    parser.add_argument("--device", type=torch_device,
                        default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cpu, cuda or cuda:N (default: cuda when available, else cpu)")
    add_quantize_args(parser)
    parser.add_argument("--json", help="also write the figures (with --harness: the "
                        "harness's results) to this JSON file")
    harness = parser.add_argument_group("lm-evaluation-harness (docs/harness.md)")
    harness.add_argument("--harness", help="comma-separated harness tasks to run instead, "
                         "e.g. kit_text,kit_lastword or lambada_openai,piqa,hellaswag,wikitext")
    harness.add_argument("--harness_include", help="a folder of more task YAMLs")
    harness.add_argument("--harness_metadata", type=json_object, default={},
                         help="a JSON object passed to the tasks' configs, e.g. "
                         "'{\"lastword\": \"lastword.jsonl\"}' for kit_lastword")
    harness.add_argument("--harness_limit", type=int,
                         help="score only the first N documents of each task")
    args = parser.parse_args(argv)
    if args.harness is None and args.text is None and args.data_dir is None:
        parser.error("pass --text FILE or --data_dir DIR to score, or --harness TASKS")
    if args.harness is not None and args.data_dir is not None:
        parser.error("--harness scores its tasks, not a --data_dir split; pass --tokenizer "
                     "DIR for the model's tokenizer, --text FILE for kit_text")
    for flag in ("block_size", "stride", "batch_size", "harness_limit"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag} must be a positive integer, got {getattr(args, flag)}")
    if args.harness is not None:
        return run_harness(parser, args)
    try:
        text = read_text(args.text) if args.text else None
        ids = None if args.data_dir is None else open_split(args.data_dir, args.split)
        model, tokenizer = load_model(args.model, args.tokenizer or args.data_dir)
        if args.quantize != "none":
            quantize_model(model, args.quantize)
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
              "quantize": args.quantize, "model_bytes": model_bytes(model), **result}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    return result


def run_harness(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """``--harness``: print the harness's results JSON and write it to ``--json``."""
    tasks = [t.strip() for t in args.harness.split(",") if t.strip()]
    if not tasks:
        parser.error(f"--harness needs task names, got {args.harness!r}")
    if args.harness_include and not Path(args.harness_include).is_dir():
        parser.error(f"--harness_include {args.harness_include} is not a folder of task YAMLs")
    metadata = {**({"text": args.text} if args.text else {}), **args.harness_metadata}
    try:
        model, tokenizer = load_model(args.model, args.tokenizer)
        if args.quantize != "none":
            quantize_model(model, args.quantize)
        result = evaluate_harness(model, tokenizer, tasks, args.harness_include, metadata,
                                  args.harness_limit, args.batch_size, args.device,
                                  args.block_size)
    except (FileNotFoundError, ValueError, OSError) as error:
        parser.exit(2, f"evaluate_lm.py: error: {error}\n")
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(json.dumps(result["results"], indent=2))
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()

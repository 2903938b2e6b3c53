"""The tokenizer and the GPT-2 weights the shared flags (``training.args``) ask for."""

from __future__ import annotations

import argparse
import os

from config import GPT2Config
from models.gpt2 import GPT2Model

TOKENIZER_HINT = ("pass --tokenizer ../shared/data/gpt2-tokenizer (a folder with vocab.json "
                  "and merges.txt), or run `python data/prepare.py --from "
                  "../shared/data/cs224n --tokenizer ../shared/data/gpt2-tokenizer`, which "
                  "copies it to the default data/gpt2-tokenizer")


def load_tokenizer(name_or_dir: str):
    """A GPT-2 ``PreTrainedTokenizerFast`` with ``<|endoftext|>`` as its pad token.

    ``name_or_dir`` is a folder holding ``vocab.json`` and ``merges.txt`` or a Hugging Face
    name (which needs the network or the Hugging Face cache).
    """
    from transformers import AutoTokenizer, GPT2TokenizerFast

    if not os.path.isdir(name_or_dir) and (os.sep in name_or_dir or name_or_dir.startswith(".")):
        raise SystemExit(f"tokenizer folder {name_or_dir} not found; {TOKENIZER_HINT}")
    if os.path.isdir(name_or_dir):
        files = [os.path.join(name_or_dir, f) for f in ("vocab.json", "merges.txt")]
        if not all(os.path.isfile(f) for f in files):
            raise SystemExit(f"tokenizer folder {name_or_dir} needs vocab.json and merges.txt")
        tokenizer = GPT2TokenizerFast.from_pretrained(name_or_dir)
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(name_or_dir)
        except OSError as error:
            raise SystemExit(
                f"cannot load tokenizer {name_or_dir!r} ({error.__class__.__name__}); "
                f"{TOKENIZER_HINT}") from error
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_gpt2(args: argparse.Namespace, **config_overrides) -> GPT2Model:
    """The ``GPT2Model`` the flags of ``add_model_args`` ask for.

    ``config_overrides`` (e.g. ``hidden_dropout_prob``) apply to every path; ``--sdpa``
    adds ``attention_impl="sdpa"``.  Exits with what to pass when no weights can be had.
    """
    if args.sdpa:
        config_overrides["attention_impl"] = "sdpa"
    if args.random_init:
        if args.model_path:
            from transformers import AutoConfig
            config = GPT2Config.from_hf(AutoConfig.from_pretrained(args.model_path),
                                        **config_overrides)
        else:
            config = GPT2Config.from_preset(args.model_size, **config_overrides)
        return GPT2Model(config)
    source = args.model_path or args.model_size
    if args.model_path and not os.path.isdir(args.model_path):
        raise SystemExit(f"--model_path {args.model_path} is not a folder; pass a Hugging "
                         "Face GPT-2 checkpoint folder (config.json + model.safetensors)")
    try:
        return GPT2Model.from_pretrained(source, **config_overrides)
    except OSError as error:
        raise SystemExit(f"{error}\nOr pass --random_init for a smoke run with random "
                         "weights.") from error

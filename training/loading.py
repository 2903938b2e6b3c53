"""The tokenizer and the GPT-2 weights the shared flags (``training.args``) ask for, and the
language model (with its tokenizer) that a checkpoint, folder or hub name on the command line
names."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from config import GPT2Config
from models.gpt2 import GPT2Model
from training.checkpoint import load_checkpoint, model_from_checkpoint
from training.lm_data import (
    LMTokenizer,
    gpt2_tokenizer_dir,
    load_lm_tokenizer,
    load_tokenizer_dir,
    read_meta,
)
from training.paths import DATA_DIR

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


def task_tokenizer(args: argparse.Namespace) -> str:
    """The tokenizer a task script reads its text with (``add_model_args``'s flags):
    ``--tokenizer`` when given; for a ``pretrain.py`` checkpoint as ``--model_path``, the
    tokenizer of its run's corpus (a character model reads bytes); else the GPT-2 files that
    ``data/prepare.py`` copies (``data/gpt2-tokenizer``)."""
    if args.tokenizer:
        return args.tokenizer
    ours = our_checkpoint(args.model_path) if args.model_path else None
    if ours is not None:
        try:
            return str(tokenizer_files(run_tokenizer_dir(ours)))
        except ValueError:
            pass  # a checkpoint that names no corpus: the tasks' GPT-2 files
    return str(DATA_DIR / "gpt2-tokenizer")


def tokenizer_vocab_size(name_or_dir: str) -> int | None:
    """Entries of a tokenizer folder's ``vocab.json`` (None for a hub name)."""
    path = Path(name_or_dir) / "vocab.json"
    return len(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None


def load_gpt2(args: argparse.Namespace, **config_overrides) -> GPT2Model:
    """The ``GPT2Model`` the flags of ``add_model_args`` ask for.

    ``--model_path`` is a Hugging Face folder or a ``pretrain.py`` checkpoint (``ckpt.pt``,
    ``best.pt`` or their folder), whose vocabulary must hold the task's tokenizer's
    (``task_tokenizer``: its own run's by default).  ``config_overrides`` (e.g. ``hidden_dropout_prob``) apply to every path;
    ``--sdpa`` adds ``attention_impl="sdpa"``, and ``--attention_window`` and
    ``--attention_sinks`` their fields when given.  Exits with what to pass when no weights
    can be had.
    """
    if args.sdpa:
        config_overrides["attention_impl"] = "sdpa"
    for name in ("attention_window", "attention_sinks"):
        if getattr(args, name) is not None:
            config_overrides[name] = getattr(args, name)
    ours = our_checkpoint(args.model_path) if args.model_path else None
    if ours is not None:
        return load_pretrained_run(ours, args.random_init, task_tokenizer(args),
                                   **config_overrides)
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
                         "Face GPT-2 checkpoint folder (config.json + model.safetensors) or "
                         "a pretrain.py checkpoint (ckpt.pt, or the folder holding it)")
    try:
        return GPT2Model.from_pretrained(source, **config_overrides)
    except OSError as error:
        raise SystemExit(f"{error}\nOr pass --random_init for a smoke run with random "
                         "weights.") from error



def load_pretrained_run(checkpoint: Path, random_init: bool, tokenizer: str,
                        **config_overrides) -> GPT2Model:
    """A ``pretrain.py`` checkpoint for a task (``--model_path out/DIR``): its weights, or
    random ones of its shape with ``random_init``.  Exits naming the file when it is
    unreadable or its vocabulary is smaller than that of ``tokenizer`` (a folder or name)."""
    try:
        if random_init:
            model_args = load_checkpoint(checkpoint, keys=("model", "model_args"))["model_args"]
            model = GPT2Model(GPT2Config(**{**model_args, **config_overrides}))
        else:
            model = model_from_checkpoint(checkpoint, **config_overrides)
    except (FileNotFoundError, ValueError, TypeError) as error:
        raise SystemExit(f"--model_path {checkpoint}: {error}") from error
    needed = tokenizer_vocab_size(tokenizer) or GPT2Config().vocab_size
    if model.config.vocab_size < needed:
        raise SystemExit(f"--model_path {checkpoint}: its vocabulary has "
                         f"{model.config.vocab_size} tokens but the tokenizer {tokenizer} has "
                         f"{needed}; leave --tokenizer out to read with its run's own")
    return model

# --- language models named on the command line (evaluate_lm.py, sample.py, export_hf.py) ---

CHECKPOINT_NAMES = ("ckpt.pt", "best.pt")  # a pretrain.py folder holds one of these


def our_checkpoint(spec: str) -> Path | None:
    """The ``pretrain.py`` checkpoint file ``spec`` names (the file, or a folder without a
    ``config.json`` that holds ``ckpt.pt`` or ``best.pt``), else None."""
    path = Path(spec)
    if path.is_file():
        return path
    if path.is_dir() and not (path / "config.json").is_file():
        return next((path / n for n in CHECKPOINT_NAMES if (path / n).is_file()), None)
    return None


def tokenizer_files(folder: str | Path) -> Path:
    """The folder holding the tokenizer's files: a prepared corpus folder's ``tokenizer_dir``
    (``data/prepare_lm.py``), else ``folder`` itself."""
    if (Path(folder) / "meta.json").is_file():
        return Path(folder) / read_meta(folder)["tokenizer_dir"]
    return Path(folder)


def tokenizer_from(folder: str | Path) -> LMTokenizer:
    """A prepared corpus folder's tokenizer, or a folder of tokenizer files."""
    if (Path(folder) / "meta.json").is_file():
        return load_lm_tokenizer(folder)
    return load_tokenizer_dir(folder)


def run_tokenizer_dir(checkpoint: Path) -> Path:
    """The tokenizer a checkpoint's run used, from its flags (``config``): a ``pretrain.py``
    run's corpus folder (``data_dir`` with ``meta.json``), else a task script's
    ``--tokenizer`` folder (the GPT-2 files).  Raises ValueError when it names neither."""
    config = load_checkpoint(checkpoint).get("config") or {}
    data_dir, tokenizer = config.get("data_dir"), config.get("tokenizer")
    if data_dir is not None and (Path(data_dir) / "meta.json").is_file():
        return Path(data_dir)
    if tokenizer is not None and Path(tokenizer).is_dir():
        return Path(tokenizer)
    if data_dir is not None:
        return Path(data_dir)
    raise ValueError(f"{checkpoint} does not name its corpus folder (config['data_dir']) nor "
                     "a tokenizer folder (config['tokenizer']); pass --tokenizer DIR, the "
                     "folder data/prepare_lm.py wrote")


def model_and_tokenizer_dir(spec: str, tokenizer_dir: str | None) -> tuple[GPT2Model, Path]:
    """The model ``spec`` names and the folder of its tokenizer.

    ``spec`` is a checkpoint of ours (``ckpt.pt``/``best.pt`` or its folder, or a task
    script's, e.g. ``dpo.py``'s), a Hugging Face folder (``config.json``; GPT-2 or GPT-NeoX)
    or hub name.  The tokenizer is ``tokenizer_dir`` when given, else, for one of ours, its
    run's (``run_tokenizer_dir``), for a Hugging Face folder its own tokenizer files, else
    GPT-2's.  Raises FileNotFoundError, ValueError or OSError naming what is missing.
    """
    checkpoint = our_checkpoint(spec)
    if checkpoint is not None:
        model = model_from_checkpoint(checkpoint)
        return model, Path(tokenizer_dir or run_tokenizer_dir(checkpoint))
    if Path(spec).is_dir() and (Path(spec) / "config.json").is_file():
        folder = Path(spec)
        own = ((folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()
               or (folder / "tokenizer.json").is_file())
        default = folder if own else None
    elif Path(spec).is_dir():
        held = sorted(path.name for path in Path(spec).glob("*.pt"))
        hint = f"; it holds {', '.join(held)}: pass one of them" if held else ""
        raise FileNotFoundError(f"{spec}: a folder with no {' or '.join(CHECKPOINT_NAMES)} and "
                                f"no config.json{hint}")
    elif any(c in spec for c in "/\\") or spec.startswith("."):
        raise FileNotFoundError(f"{spec}: no such checkpoint file or folder; pass a ckpt.pt, "
                                "a folder holding one, a Hugging Face checkpoint folder, or a "
                                "hub name like gpt2")
    else:
        default = None
    model = GPT2Model.from_pretrained(spec)
    return model, Path(tokenizer_dir or default or gpt2_tokenizer_dir())


def load_model(spec: str, tokenizer_dir: str | None) -> tuple[GPT2Model, LMTokenizer]:
    """The model ``spec`` names and its tokenizer (see ``model_and_tokenizer_dir``)."""
    model, folder = model_and_tokenizer_dir(spec, tokenizer_dir)
    return model, tokenizer_from(folder)

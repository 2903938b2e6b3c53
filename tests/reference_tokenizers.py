"""Reference GPT-2 tokenizers built offline from the GPT-2 files, for the tests and the
tokenizer benchmark: the one home of the tiktoken builder.

The tests import it as ``reference_tokenizers`` (pytest puts ``tests/`` on the path);
``bench/bpe_speed.py``, run from the repository root as ``python -m bench.bpe_speed``,
imports it as ``tests.reference_tokenizers``.
"""

from __future__ import annotations

import json
from pathlib import Path

import bpe

EOT = "<|endoftext|>"


def tiktoken_gpt2(gpt2_dir: str | Path):
    """tiktoken's GPT-2 encoding built from ``gpt2_dir/vocab.json`` (no download): the
    vocabulary's byte strings as ranks, GPT-2's split pattern, ``<|endoftext|>`` special."""
    import tiktoken

    vocab = json.loads((Path(gpt2_dir) / "vocab.json").read_text(encoding="utf-8"))
    ranks = {bpe.token_bytes(t, "vocab.json"): i for t, i in vocab.items() if t != EOT}
    return tiktoken.Encoding(name="gpt2-from-files", pat_str=bpe.GPT2_PATTERN,
                             mergeable_ranks=ranks, special_tokens={EOT: vocab[EOT]})

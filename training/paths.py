"""Where the scripts find their data by default: one home for the kit's data locations.

Two folders:

- ``DATA_DIR``, the repository's ``data/``: the prepared splits and tokenizer that the task
  scripts read (``data/prepare.py`` writes them in the staff tree; a release made with
  ``python -m autograder release --data DIR`` ships them);
- the course data, laid out as ``../shared/data`` (its README): ``cs224n/``,
  ``gpt2-tokenizer/``, ``tinyshakespeare/input.txt``.  ``course_data(rel)`` finds ``rel``
  in ``$BUILD_GPT2_DATA`` when set, else in ``data/`` (a release holds the tokenizer and
  Tiny Shakespeare there), else in ``../shared/data`` beside the repository (the staff tree).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO / "data"
SHARED_DATA = REPO.parent / "shared" / "data"
TINY_SHAKESPEARE = "tinyshakespeare/input.txt"  # the default pretraining corpus
GPT2_TOKENIZER = "gpt2-tokenizer"  # vocab.json and merges.txt


def course_data(rel: str) -> Path:
    """``rel`` in the first course data folder that holds it (see the module docstring);
    when none does, its path in the last folder looked in, for the error message."""
    env = os.environ.get("BUILD_GPT2_DATA")
    folders = [Path(env)] if env else [DATA_DIR, SHARED_DATA]
    for folder in folders:
        if (folder / rel).exists():
            return folder / rel
    return folders[-1] / rel

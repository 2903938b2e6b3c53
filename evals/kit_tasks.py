"""The documents of the kit's tasks (the ``custom_dataset`` of their YAML configs) and the
rolling task's metrics.  The harness calls a loader with the task's metadata (what
``evaluate_lm.py --text`` and ``--harness_metadata`` set) as keyword arguments."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict


def lastword(lastword: str | None = None, **_: Any) -> DatasetDict:
    """The ``test`` split of ``kit_lastword``: the rows of the JSONL file ``lastword``, each
    ``{"text": passage}`` with a passage of at least two words.  ValueError naming the file
    and line for a bad row, or saying what to pass when no file is named."""
    if lastword is None:
        raise ValueError("kit_lastword reads a JSONL file that evals/make_lastword.py writes; "
                         "pass it as --harness_metadata '{\"lastword\": \"FILE.jsonl\"}'")
    path = Path(lastword)
    if not path.is_file():
        raise FileNotFoundError(f"kit_lastword: {path} not found; write it with "
                                f"`python evals/make_lastword.py TEXT --out {path}`")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from error
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) \
                or len(row["text"].split(" ")) < 2:
            raise ValueError(f"{path}:{number}: expected {{\"text\": \"a passage of at least "
                             f"two words\"}}, got {line[:80]!r}")
        rows.append({"text": row["text"]})
    if not rows:
        raise ValueError(f"{path}: no rows")
    return DatasetDict({"test": Dataset.from_list(rows)})


def text(text: str | None = None, **_: Any) -> DatasetDict:
    """The ``test`` split of ``kit_text``: one document, ``{"text": the file's text}``."""
    if text is None:
        raise ValueError("kit_text scores a text file; pass it as --text FILE")
    path = Path(text)
    if not path.is_file():
        raise FileNotFoundError(f"kit_text: {path} not found")
    content = path.read_text(encoding="utf-8")
    if not content:
        raise ValueError(f"kit_text: {path} is empty")
    return DatasetDict({"test": Dataset.from_list([{"text": content}])})


def process_text(doc: dict[str, str], results: list[float]) -> dict[str, tuple[float, int]]:
    """The rolling log-likelihood with the counts that the harness's weighted perplexities
    divide by: words (whitespace-separated) and UTF-8 bytes of the document."""
    (loglikelihood,) = results
    words = len(re.split(r"\s+", doc["text"].strip()))
    n_bytes = len(doc["text"].encode("utf-8"))
    return {"word_perplexity": (loglikelihood, words),
            "byte_perplexity": (loglikelihood, n_bytes),
            "bits_per_byte": (loglikelihood, n_bytes)}

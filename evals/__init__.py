"""The kit's offline lm-evaluation-harness tasks: YAML task configs that ``evaluate_lm.py
--harness`` always includes (``TASKS_DIR``), and the loaders they name.

- ``kit_lastword`` (``lastword.yaml``): LAMBADA's task on any text.  Each row of a JSONL
  file that ``evals/make_lastword.py`` writes is ``{"text": passage}``; the model scores
  the passage's last word after the rest (``acc``: greedy decoding gives exactly that
  word; ``perplexity`` of the word).  The file is the task's ``lastword`` metadata.
- ``kit_text`` (``text.yaml``): the rolling perplexity of one text file (the task's
  ``text`` metadata), one document: ``word_perplexity``, ``byte_perplexity``,
  ``bits_per_byte``, as the harness reports them for ``wikitext``.
"""

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent

"""Red-team submission: the fenced `attention` returns the grader's own trusted attention,
reached through its staff module from inside the child by every direct way: the module
table, an import by name, the producers' binding (`trusted.solution`), and the file itself
beside the child's script.  Names are built at run time, so the grader's scan of the source
does not refuse it: what is tested is the child.

It answers with the trusted function, so it scores, only when one of them works."""

import importlib
import sys
from pathlib import Path

from torch import nn

GRADER = "auto" + "grader"


def trusted_attention():
    """The staff version of `attention`, or None."""
    for name in (f"{GRADER}.producers.solutions", "_staff_solutions"):
        if hasattr(sys.modules.get(name), "attention"):
            return sys.modules[name].attention
    for name in (f"{GRADER}.producers.solutions", f"{GRADER}.producers.trusted"):
        try:
            module = importlib.import_module(name)
        except Exception:
            continue
        if hasattr(module, "attention"):
            return module.attention
        if getattr(module, "_bound", {}).get("attention"):  # the producers' binding
            return module._bound["attention"]
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    if script:
        path = Path(script).parent / "producers" / "solutions.py"
        try:
            scope = {"__name__": "stolen"}
            exec(compile(path.read_text(), str(path), "exec"), scope)
            return scope["attention"]
        except Exception:
            pass
    return None


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def attention(self, key, query, value, attention_mask):
        found = trusted_attention()
        if found is None:
            raise PermissionError("reached no trusted solution")
        return found(self, key, query, value, attention_mask)

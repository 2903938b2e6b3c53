"""The ``--help`` layout of every script: its own module, free of torch, so that the light
scripts (``bpe.py``, ``prepare_submit.py``, the grading benchmark) import it without
paying for torch."""

from __future__ import annotations

import argparse
import copy


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``--help`` that keeps the description's layout and shows each flag's default: ``(default: X)`` is appended to a flag's
    help unless its help already names the default, or the default is None, False, empty
    or suppressed (a flag that is off unless given)."""

    def _format_action(self, action: argparse.Action) -> str:
        text, default = action.help or "", action.default
        off = default is None or default is False or default is argparse.SUPPRESS
        if off or "default" in text.lower() or default in ([], ()):
            return super()._format_action(action)
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        action = copy.copy(action)
        action.help = f"{text} (default: {str(shown).replace('%', '%%')})".lstrip()
        return super()._format_action(action)

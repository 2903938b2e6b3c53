"""Every script's ``--help`` (the kit's, the benchmarks', the analysis' and the data
scripts') shows the defaults (`training.helpformat.HelpFormatter`): a flag
with a default states it, once, and a flag that is off unless given states none."""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

import pytest

from training.helpformat import HelpFormatter

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(str(path.relative_to(REPO)) for folder in ("", "bench", "evals", "analysis", "data")
                 for path in (REPO / folder).glob("*.py")
                 if "ArgumentParser(" in path.read_text(encoding="utf-8"))


class Parsed(Exception):
    """Raised in place of parsing, carrying the script's parser."""

    def __init__(self, parser: argparse.ArgumentParser):
        self.parser = parser


def parsers_of(script: str, monkeypatch) -> list[argparse.ArgumentParser]:
    """The script's parser (run as ``__main__`` up to its first parse), and its subcommands'."""

    def capture(self, *args, **kwargs):
        raise Parsed(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", capture)
    monkeypatch.setattr(sys, "argv", [script])
    with pytest.raises(Parsed) as parsed:
        runpy.run_path(str(REPO / script), run_name="__main__")
    parser = parsed.value.parser
    commands = [action for action in parser._actions
                if isinstance(action, argparse._SubParsersAction)]
    return [parser, *(sub for action in commands for sub in action.choices.values())]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_shows_every_default(script, monkeypatch):
    for parser in parsers_of(script, monkeypatch):
        assert issubclass(parser.formatter_class, HelpFormatter), script
        text = "".join(parser.format_help().split())  # wrapped lines, spaces dropped
        for action in parser._actions:
            default = action.default
            if default is None or default is False or default is argparse.SUPPRESS \
                    or default in ([], ()) or not action.option_strings:
                continue
            shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) \
                else str(default)
            assert "default" in (action.help or "").lower() or \
                f"(default:{''.join(shown.split())})" in text, (script, action.dest)


def test_every_research_switch_says_what_it_does():
    from config import BOOLEAN_SWITCHES, SWITCH_HELP, SWITCHES
    from training.pretrain_flags import NUMERIC_OPTIONS, WINDOW_OPTIONS, build_parser

    names = {*SWITCHES, *BOOLEAN_SWITCHES, *NUMERIC_OPTIONS, *WINDOW_OPTIONS}
    assert set(SWITCH_HELP) == names
    helps = {action.dest: action.help for action in build_parser()._actions}
    assert all(helps[name] == SWITCH_HELP[name] for name in names)


def test_the_formatter_states_a_default_once_and_none_for_a_switch():
    parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
    parser.add_argument("--lr", type=float, default=0.0, help="learning rate")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", default="x", help="folder (default: the run's)")
    parser.add_argument("--fast", action="store_true", help="skip checks")
    parser.add_argument("--names", nargs="+", default=["a", "b"], help="all of them")
    text = " ".join(parser.format_help().split())
    assert "learning rate (default: 0.0)" in text and "--seed SEED (default: 3)" in text
    assert text.count("default") == 4 and "skip checks (default" not in text
    assert "all of them (default: a b)" in text

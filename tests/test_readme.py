"""The README is a short user guide whose commands work.

- README.md has at most 200 lines, links every guide in ``docs/``, and every script and
  folder it names in code (``models/gpt2.py``, ``training/``) exists;
- every relative link in README.md, ``docs/*.md`` and ``bench/README.md`` resolves;
- the README's test command is the one ``.ci/run`` runs;
- every ``python X.py ...`` and ``python -m MODULE ...`` these guides name exists, with its
  subcommand (``python -m autograder VERB``) and each ``--flag`` in the script's parser.
  The parsers are read in this process (``test_cli_help.parsers_of``): no subprocess.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest
from test_cli_help import parsers_of

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
GUIDES = [README, *sorted((REPO / "docs").glob("*.md")), REPO / "bench" / "README.md"]
MAX_LINES = 200
EXTERNAL_MODULES = {"pytest", "pip", "venv"}  # `python -m` modules that are not the kit's
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
REPO_PATH = re.compile(r"[\w.-]+(/[\w.-]*)*(\.(py|sh|npy|toml)|/)")  # a script, a folder/, ...
COMMAND = re.compile(r"(?:^|[\s`(])(?:\S*/)?python3? +(?:-m +([\w.]+)|([\w./-]+\.py))(.*)")
END_OF_COMMAND = {"&&", "||", ";", "|"}


def relative_links(path: Path) -> list[str]:
    """The targets of the Markdown links and images of ``path`` outside code blocks, minus
    web addresses and in-page anchors."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return [target for target in LINK.findall(text)
            if "://" not in target and not target.startswith(("#", "mailto:"))]


def commands(text: str) -> list[tuple[int, str, list[str]]]:
    """``(line, script or module, arguments)`` for each python command of ``text``: line
    continuations joined, arguments split as the shell does and ending at a comment, a
    backtick or a shell operator.
    ``script`` is ``X.py`` for a script and ``-m MODULE`` for a module."""
    found = []
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        start, line = number + 1, lines[number]
        while line.endswith("\\") and number + 1 < len(lines):
            number += 1
            line = line[:-1] + " " + lines[number].strip()
        number += 1
        for match in COMMAND.finditer(line):
            module, script, rest = match.groups()
            rest = rest.split("`")[0]
            try:
                tokens = shlex.split(rest, comments=True)
            except ValueError:  # an unbalanced quote: prose, not a shell line
                tokens = rest.split()
            arguments = []
            for token in tokens:
                if token.startswith("#") or token in END_OF_COMMAND:
                    break
                arguments.append(token)
            found.append((start, f"-m {module}" if module else script, arguments))
    return found


def script_path(target: str) -> Path | None:
    """The file that ``python X.py`` or ``python -m MODULE`` runs; None for an external module."""
    if not target.startswith("-m "):
        return REPO / target
    module = target[3:]
    if module.split(".")[0] in EXTERNAL_MODULES:
        return None
    base = REPO.joinpath(*module.split("."))
    return base / "__main__.py" if base.is_dir() else base.with_suffix(".py")


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's subcommands by name (empty when it has none)."""
    return {name: sub for action in parser._actions
            if isinstance(action, argparse._SubParsersAction)
            for name, sub in action.choices.items()}


def options(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_LINES, f"README.md has {len(lines)} lines, more than {MAX_LINES}"


def test_readme_links_every_guide():
    linked = {(README.parent / target.split("#")[0]).resolve()
              for target in relative_links(README)}
    missing = [path.name for path in GUIDES[1:] if path.resolve() not in linked]
    assert not missing, f"README.md links none of {missing}"


def test_every_file_the_readme_names_exists():
    text = FENCE.sub("", README.read_text(encoding="utf-8"))
    named = [span for span in CODE_SPAN.findall(text) if REPO_PATH.fullmatch(span)]
    assert "models/gpt2.py" in named and "training/" in named
    missing = [name for name in named if not (REPO / name).exists()]
    assert not missing, f"README.md names files that do not exist: {missing}"


@pytest.mark.parametrize("path", GUIDES, ids=lambda path: str(path.relative_to(REPO)))
def test_every_relative_link_resolves(path):
    broken = [target for target in relative_links(path)
              if not (path.parent / target.split("#")[0]).exists()]
    assert not broken, f"{path.relative_to(REPO)}: links to missing files {broken}"


def test_readme_test_command_is_what_ci_runs():
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    ran = ci[-1]
    top = FENCE.search(README.read_text(encoding="utf-8")).group(0).splitlines()[1:-1]
    tests = [line.split("#")[0].strip() for line in top if "pytest" in line]
    assert tests == [ran], f"README.md's test command {tests} is not .ci/run's {ran!r}"


def test_every_command_exists(monkeypatch):
    found = [(guide, *command) for guide in GUIDES
             for command in commands(guide.read_text(encoding="utf-8"))]
    assert any(guide == README and target == "-m autograder" for guide, _, target, _ in found)
    parsers: dict[Path, argparse.ArgumentParser] = {}
    problems = []
    for guide, line, target, arguments in found:
        where = f"{guide.relative_to(REPO)}:{line}: python {target}"
        path = script_path(target)
        if path is None:
            continue
        if not path.is_file():
            problems.append(f"{where}: no file {path.relative_to(REPO)}")
            continue
        if path not in parsers:
            with monkeypatch.context() as patch:
                parsers[path] = parsers_of(str(path.relative_to(REPO)), patch)[0]
        parser = parsers[path]
        known = options(parser)
        verbs = subcommands(parser)
        if verbs:
            verb = next((token for token in arguments if not token.startswith("-")), None)
            if verb not in verbs:
                problems.append(f"{where}: {verb!r} is not one of {sorted(verbs)}")
                continue
            known |= options(verbs[verb])
        problems += [f"{where}: no flag {flag}" for flag in
                     (token.split("=")[0] for token in arguments
                      if token.startswith("--") and " " not in token)
                     if flag not in known]
    assert not problems, "\n".join(problems)


def test_the_command_reader_sees_verbs_flags_and_continuations():
    text = ("run `python -m autograder grade x.zip --json r.json` then\n"
            ".venv/bin/python sweep.py run g.toml \\\n    --out_dir o --sbatch_args \"--x=1 --y\"  # --no\n"
            "bash setup.sh && .venv/bin/python -m pytest -n 2 -q\n")
    assert commands(text) == [(1, "-m autograder", ["grade", "x.zip", "--json", "r.json"]),
                              (2, "sweep.py", ["run", "g.toml", "--out_dir", "o", "--sbatch_args",
                                               "--x=1 --y"]),
                              (4, "-m pytest", ["-n", "2", "-q"])]
    assert script_path("-m pytest") is None
    assert script_path("-m analysis.outliers") == REPO / "analysis" / "outliers.py"
    assert script_path("-m autograder") == REPO / "autograder" / "__main__.py"

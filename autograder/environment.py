"""The one package list: what the grader installs, and so what a submission may import.

The pins are `pyproject.toml`'s `[project] dependencies` (the runtime: the handout's
environment and the grader's are the same) and its `dev` extra (staff tests and tools).
Everything reads them here: `setup.sh` (install, then `python -m autograder.environment
--dev` to import each one), the Gradescope bundle (`requirements.txt`, written from this
list by `build`, read here where there is no pyproject.toml, and its `setup.sh`, which runs
the same check), and the sandbox probe (`autograder/isolation.py`: the sandbox user must
find each package).  Student code may import the standard library and these packages only.

    python -m autograder.environment [--dev]   # import every package; exit 1 naming the missing
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLE_REQUIREMENTS = "requirements.txt"  # the bundle's frozen copy of the runtime pins


def requirements(root: Path = ROOT, dev: bool = False) -> list[str]:
    """The pins (`name==version`) of the runtime, plus the `dev` extra when `dev`.

    Read from `root/pyproject.toml`, or in a bundle (which has none) from its
    `requirements.txt`."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        if dev:
            raise FileNotFoundError(f"{pyproject} not found: the dev pins live only there")
        lines = (root / BUNDLE_REQUIREMENTS).read_text().splitlines()
        return [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    import tomllib

    project = tomllib.loads(pyproject.read_text())["project"]
    return list(project["dependencies"]) + (
        list(project["optional-dependencies"]["dev"]) if dev else [])


def distribution_name(requirement: str) -> str:
    """`scikit-learn==1.9.1` -> `scikit-learn`."""
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]


def import_name(requirement: str) -> str:
    """The module a pinned distribution is imported as (`scikit-learn` -> `sklearn`),
    from its installed metadata: its top-level module named like it, else its only one.

    Raises PackageNotFoundError when it is not installed."""
    name = distribution_name(requirement)
    wanted = re.sub(r"[-.]", "_", name).lower()
    dist = distribution(name)
    top = (dist.read_text("top_level.txt") or "").split()
    if not top:
        top = sorted({Path(str(f)).parts[0].removesuffix(".py") for f in dist.files or []
                      if str(f).endswith(".py") and ".dist-info" not in str(f)})
    top = [m for m in top if not m.startswith("_") and m.isidentifier()]
    if wanted in top or not top:
        return wanted
    return top[0] if len(top) == 1 else wanted


def missing_imports(root: Path = ROOT, dev: bool = False) -> list[str]:
    """`requirement: why` for every pin that does not import here."""
    missing = []
    for requirement in requirements(root, dev):
        try:
            importlib.import_module(import_name(requirement))
        except (ImportError, PackageNotFoundError) as error:
            missing.append(f"{requirement}: {type(error).__name__}: {error}")
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Import every pinned package.")
    parser.add_argument("--dev", action="store_true", help="the dev extra too")
    parser.add_argument("--root", type=Path, default=ROOT, help="the tree with the pins")
    args = parser.parse_args(argv)
    missing = missing_imports(args.root, args.dev)
    for line in missing:
        print(f"[environment] missing {line}", file=sys.stderr)
    if not missing:
        print(f"[environment] ok: all {len(requirements(args.root, args.dev))} pinned "
              "packages import")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())

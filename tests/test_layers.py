"""The layers of DESIGN.md, read from the import statements (``ast``, every import in a file,
also those inside functions): the model (``models/``, ``modules/``) knows no training,
``training/`` knows no task, the task and study scripts never
import each other, and ``bench/`` imports no task script."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TASK_SCRIPTS = ("classifier", "paraphrase_detection", "sonnet_generation")
STUDY_SCRIPTS = ("dpo", "pretrain", "evaluate_lm", "average_checkpoints", "sweep", "export_hf",
                 "sample")
# What the training core must not import: the scripts, and the task-level modules and packages.
TASK_LEVEL = (*TASK_SCRIPTS, *STUDY_SCRIPTS, "evaluation", "data", "analysis", "autograder",
              "prepare_submit", "sanity_check")


def imported(path: Path) -> set[str]:
    """The top-level names of the absolute imports of the file at ``path``, e.g. {'torch',
    'training'} for ``import torch`` and ``from training.trainer import Trainer``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_imported_reads_every_absolute_import(tmp_path):
    source = tmp_path / "example.py"
    source.write_text("import os.path\nfrom training.trainer import Trainer\n"
                      "def f():\n    import classifier\nfrom . import sibling\n")
    assert imported(source) == {"os", "training", "classifier"}


@pytest.mark.parametrize("path", sorted((REPO / "training").glob("*.py")), ids=lambda p: p.name)
def test_the_training_core_imports_no_task(path):
    assert not imported(path) & set(TASK_LEVEL), path


@pytest.mark.parametrize("path", sorted([*(REPO / "models").glob("*.py"), *(REPO / "modules").glob("*.py"),
                                         REPO / "config.py", REPO / "utils.py"]),
                         ids=lambda p: p.relative_to(REPO).as_posix())
def test_the_model_imports_no_training_and_no_task(path):
    assert not imported(path) & {"training", *TASK_LEVEL}, path


@pytest.mark.parametrize("script", TASK_SCRIPTS + STUDY_SCRIPTS)
def test_no_task_or_study_script_imports_another(script):
    others = set(TASK_SCRIPTS + STUDY_SCRIPTS) - {script}
    assert not imported(REPO / f"{script}.py") & others, script


@pytest.mark.parametrize("path", sorted((REPO / "bench").glob("*.py")), ids=lambda p: p.name)
def test_benchmarks_import_no_task_script(path):
    assert not imported(path) & set(TASK_SCRIPTS), path


# The autograder's authoring layer (staff only: the handout's documents, the bundle, the
# reference outputs, the demo, the similarity report) sits above its grading runtime.
AUTHORING = ("release", "document", "release_data", "bundle", "reference", "demo",
             "similarity")


def imported_modules(path: Path) -> set[str]:
    """The full dotted names of the absolute imports of the file at ``path``, e.g.
    {'autograder.release'} for ``from autograder.release import release``, and
    'autograder.<name>' for ``from autograder import <name>``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


RUNTIME = sorted(path for path in [*(REPO / "autograder").glob("*.py"),
                                   *(REPO / "autograder" / "cases").glob("*.py"),
                                   *(REPO / "autograder" / "producers").glob("*.py")]
                 if path.stem not in (*AUTHORING, "__main__"))


@pytest.mark.parametrize("path", RUNTIME, ids=lambda p: p.relative_to(REPO).as_posix())
def test_the_grading_runtime_imports_no_authoring(path):
    authoring = {f"autograder.{name}" for name in AUTHORING}
    assert not imported_modules(path) & authoring, path

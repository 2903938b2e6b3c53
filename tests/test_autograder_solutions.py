"""The trusted solutions of fenced functions: staff-only, bound in the child, stood in for
by the student's own functions in the handout, never silently missing on a staff grader,
and not importable by a submission (see also tests/redteam/staff_solutions_*)."""

from __future__ import annotations

import inspect

import pytest
from autograder_helpers import REPO, reference_submission
from test_autograder_mutants import mutate

from autograder import child
from autograder.fences import fenced_functions
from autograder.grade import Layout, grade, stage_submission
from autograder.manifest import SOLUTIONS
from autograder.producers import trusted
from autograder.release import release
from autograder.unpack import SubmissionError, refuse_grader_names
from modules.gpt2_layer import GPT2Layer


def staff_module():
    """Loaded as the child loads it (no bytecode copy beside it in the staff tree)."""
    return child.load_solutions(str(REPO / SOLUTIONS), required=True)


def test_every_trusted_solution_stands_for_a_fenced_function_with_its_signature():
    """STANDS_FOR names fenced functions, the staff module defines exactly its names, and
    each has the parameters of the function it stands for."""
    module = staff_module()
    defined = {name for name, value in vars(module).items()
               if inspect.isfunction(value) and value.__module__ == "_staff_solutions"}
    assert defined == set(trusted.STANDS_FOR)
    fenced = fenced_functions(REPO)
    for name, function in trusted.STANDS_FOR.items():
        assert function in fenced, function
        own = trusted.solution(name)  # unbound here: the reference's own function
        assert own.__qualname__ == function.partition(":")[2]
        assert (list(inspect.signature(getattr(module, name)).parameters)
                == list(inspect.signature(own).parameters)), name


def test_bound_solutions_expose_only_themselves(monkeypatch):
    """Once bound, `solution` gives the staff version, on a globals dict holding only what
    it reads: a function handed to student code does not lead to the other solutions."""
    monkeypatch.setattr(trusted, "_bound", {})
    assert trusted.solution("add") is GPT2Layer.add
    trusted.bind(staff_module())
    add, attention = trusted.solution("add"), trusted.solution("attention")
    assert add is not GPT2Layer.add
    assert set(attention.__globals__) == {"math", "__builtins__"}
    assert set(add.__globals__) == {"__builtins__"}


def test_a_staff_grader_without_the_solutions_fails_loudly(tmp_path):
    """Hidden cases here but no staff module: staging refuses (grade() turns it into an
    internal error with score 0), and the child itself exits naming the file."""
    with pytest.raises(FileNotFoundError, match="solutions.py is missing, but this grader"):
        stage_submission(Layout(tmp_path, tmp_path, hidden_cases=True), {}, tmp_path / "run")
    missing = str(tmp_path / SOLUTIONS)
    with pytest.raises(SystemExit, match="trusted solutions .*solutions.py are missing"):
        child.load_solutions(missing, required=True)
    assert child.load_solutions(missing, required=False) is None


def test_own_functions_stand_in_for_the_trusted_ones_only_in_the_students_copy(tmp_path):
    """A wrong delta_weight: on the staff grader `merge` runs with the trusted one, so only
    delta_weight's own case fails; in the student's copy (no staff module) their own
    delta_weight stands in, so the visible merge case fails too."""
    folder = reference_submission(tmp_path / "submission")
    mutate(folder, "modules/lora.py", "return (self.lora_B @ self.lora_A) * self.scaling",
           "return (self.lora_B @ self.lora_A) * self.scaling * 2")
    handout = tmp_path / "handout"
    release(REPO, handout, ("lora",))
    failed = {}
    for where, layout in (("staff", Layout.detect()), ("student", Layout(handout, handout, False))):
        data = grade(folder, only=["lora"], layout=layout, visible_only=True, predictions=False)
        failed[where] = {t["extra_data"]["case"] for t in data["tests"] if t["status"] != "passed"}
    assert failed["staff"] == {"lora/visible_delta_weight"}
    assert failed["student"] == {"lora/visible_delta_weight", "lora/visible_merge"}


@pytest.mark.parametrize("source, line", [
    ("import torch\nimport autograder.producers.solutions as s\n", 2),
    ("def f():\n    from autograder import producers\n", 2),
    ("import importlib\nm = importlib.import_module('autograder.producers.trusted')\n", 2),
    ("x = 1\ny = autograder\n", 2),
])
def test_a_submission_that_imports_or_names_the_grader_is_refused(source, line):
    with pytest.raises(SubmissionError, match=f"refused: dpo.py:{line} imports or names the "
                                              "grader's package 'autograder'"):
        refuse_grader_names({"bpe.py": b"import os\n", "dpo.py": source.encode()})


def test_paths_and_longer_names_are_not_the_grader():
    refuse_grader_names({"dpo.py": b"path = '/autograder/results'\nautograders = 'autograders'\n"})

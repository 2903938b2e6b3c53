"""The student handout: fences replaced, everything imports, nothing secret survives."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.fences import find_fences, strip_fences
from autograder.manifest import HANDOUT_FILES, SOLUTIONS
from autograder.release import check_release, find_leaks, release, significant, solution_lines
from conftest import REPO


@pytest.fixture(scope="module")
def handout(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("release") / "handout"
    release(REPO, out)
    return out


def all_fences():
    return [fence for rel in HANDOUT_FILES if rel.endswith(".py")
            for fence in find_fences(rel, (REPO / rel).read_text())]


def test_release_check_is_clean(handout):
    assert check_release(REPO, handout) == []


def test_every_fence_is_replaced_by_a_named_todo(handout):
    fences = all_fences()
    assert len(fences) >= 8
    for fence in fences:
        text = (handout / fence.path).read_text()
        assert f"raise NotImplementedError({fence.todo!r})" in text
        assert "### BEGIN SOLUTION" not in text


CALL_EVERY_FENCE = r"""
import importlib, inspect, json, sys
results = {}
for path, qualname in json.loads(sys.argv[1]):
    module = importlib.import_module(path[:-3].replace("/", "."))
    owner, *rest = qualname.split(".")
    target = getattr(module, owner)
    cls = None
    for part in rest:
        cls, target = target, getattr(target, part)
    params = list(inspect.signature(target).parameters)
    args = [None] * len(params)
    if cls is not None and params and params[0] == "self":
        args = [object.__new__(cls)] + args[1:]
    try:
        target(*args)
        results[qualname] = "returned"
    except NotImplementedError as error:
        results[qualname] = str(error)
    except BaseException as error:
        results[qualname] = f"{type(error).__name__}: {error}"
print(json.dumps(results))
"""


def test_every_fenced_function_raises_not_implemented_naming_itself(handout):
    """Calling each fenced function of the handout (with placeholder arguments) raises
    NotImplementedError whose message is the fence's TODO."""
    import json

    fences = all_fences()
    pairs = [[fence.path, fence.qualname] for fence in fences]
    result = subprocess.run([sys.executable, "-c", CALL_EVERY_FENCE, json.dumps(pairs)],
                            cwd=handout, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    for fence in fences:
        assert outcome[fence.qualname] == fence.todo, fence.qualname


def test_check_catches_a_module_that_does_not_import(tmp_path):
    """Every handout module must import (test_release_check_is_clean); the check sees it
    when one does not."""
    broken = tmp_path / "broken"
    release(REPO, broken)
    (broken / "optimizer.py").write_text((broken / "optimizer.py").read_text()
                                         + "\nimport no_such_module_anywhere\n")
    problems = check_release(REPO, broken)
    assert any("do not import" in p and "no_such_module_anywhere" in p for p in problems)


def test_no_staff_only_files(handout):
    released = {p.relative_to(handout).as_posix() for p in handout.rglob("*") if p.is_file()}
    assert not any(rel.startswith(("tests/", "bench/", ".ci/", "autograder/hidden/"))
                   for rel in released)


def test_check_catches_a_leaked_solution_line(handout, tmp_path):
    """The checker is not vacuous: a solution line pasted back into the handout is found."""
    leaky = tmp_path / "leaky"
    release(REPO, leaky)
    target = leaky / "modules" / "gpt2_layer.py"
    target.write_text(target.read_text() + "\n\ndef leaked(input, output, dense_layer, dropout):\n"
                      "    return input + dropout(dense_layer(output))\n")
    problems = check_release(REPO, leaky)
    assert any("solution line survives" in p for p in problems), problems


def test_check_finds_a_solution_line_planted_in_another_released_file(handout, tmp_path):
    """A line of a graded fence is looked for in every released file, whatever its
    indentation and comment: here in a producer and in the handout's prose.  The problem
    names the released file and line and the fence the line comes from."""
    leaky = tmp_path / "leaky"
    shutil.copytree(handout, leaky)
    producer = leaky / "autograder" / "producers" / "trusted.py"
    lines = producer.read_text().splitlines()
    producer.write_text("\n".join(lines + ["def f(words, freqs, counts, pair, freq):",
                                           "        counts[pair]  =  counts.get(pair, 0) + freq"
                                           "  # weighted"]) + "\n")
    prose = leaky / "HANDOUT.md"
    prose.write_text(prose.read_text() + "\n```python\nreturn (self.lora_B @ self.lora_A) * "
                     "self.scaling\n```\n")
    (fence,) = [f for f in find_fences("bpe.py", (REPO / "bpe.py").read_text())
                if f.qualname == "count_pairs"]
    problems = find_leaks(solution_lines(REPO), leaky)
    assert problems[0] == (
        f"HANDOUT.md:{len(prose.read_text().splitlines()) - 1}: solution line survives (from "
        "the fence of modules/lora.py LoRALinear.delta_weight at line "
        f"{next(f.begin for f in all_fences() if f.qualname == 'LoRALinear.delta_weight')}): "
        "'return (self.lora_B @ self.lora_A) * self.scaling'")
    assert problems[1:] == [
        f"autograder/producers/trusted.py:{len(lines) + 2}: solution line survives (from the "
        f"fence of bpe.py count_pairs at line {fence.begin}): "
        "'counts[pair] = counts.get(pair, 0) + freq'"]


def test_trivial_fence_lines_are_not_solution_text():
    assert not any(significant(line) for line in
                   ("", "pass", "else:", "return out", "return None", ")", "}]",
                    "self.merged = True"))
    assert all(significant(line) for line in
               ("counts, where = {}, {}", "counts[pair] = 0", "return input + dropout(x)"))


def test_the_trusted_solutions_stay_in_the_staff_tree(handout):
    assert (REPO / SOLUTIONS).is_file() and not (handout / SOLUTIONS).exists()


def test_unbalanced_fences_are_reported_with_file_and_line():
    text = "def f():\n    ### BEGIN SOLUTION\n    return 1\n"
    with pytest.raises(ValueError, match=r"x.py:2: ### BEGIN SOLUTION is never closed"):
        strip_fences("x.py", text)
    with pytest.raises(ValueError, match=r"x.py:1: ### END SOLUTION without"):
        strip_fences("x.py", "### END SOLUTION\n")
    with pytest.raises(ValueError, match="outside any function"):
        strip_fences("x.py", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n")


def test_strip_keeps_indentation_and_docstring():
    text = ('class A:\n    def f(self):\n        """Do it (handout 9.9)."""\n'
            "        ### BEGIN SOLUTION\n        return 42\n        ### END SOLUTION\n")
    assert strip_fences("a.py", text) == (
        'class A:\n    def f(self):\n        """Do it (handout 9.9)."""\n'
        "        ### YOUR CODE HERE\n"
        "        raise NotImplementedError('TODO a.py A.f (handout 9.9)')\n")


def test_release_refuses_an_existing_folder(tmp_path):
    with pytest.raises(FileExistsError, match="already exists"):
        release(REPO, tmp_path)


def test_untouched_handout_fails_the_visible_checks(handout, make_checkpoint):
    """A new student's sanity check and optimizer test fail, naming the TODOs."""
    sanity = subprocess.run([sys.executable, "sanity_check.py", "--model_path",
                             str(make_checkpoint())], cwd=handout, capture_output=True,
                            text=True, timeout=300)
    assert sanity.returncode == 1
    assert "TODO models/gpt2.py hf_to_ours" in sanity.stdout
    optim = subprocess.run([sys.executable, "optimizer_test.py"], cwd=handout,
                           capture_output=True, text=True, timeout=300)
    assert optim.returncode != 0
    assert "TODO optimizer.py AdamW.step" in optim.stderr


def test_sanity_check_falls_back_to_a_random_gpt2_offline(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    sanity = subprocess.run([sys.executable, "sanity_check.py"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert sanity.returncode == 0, sanity.stdout + sanity.stderr
    assert sanity.stdout.startswith("gpt2 weights unavailable offline: checking against a "
                                    "randomly initialised GPT-2 of the same shape")
    assert "Sanity check PASSED" in sanity.stdout


def test_reference_passes_the_visible_checks(make_checkpoint):
    sanity = subprocess.run([sys.executable, "sanity_check.py", "--model_path",
                             str(make_checkpoint())], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert sanity.returncode == 0, sanity.stdout + sanity.stderr
    assert "Sanity check PASSED" in sanity.stdout


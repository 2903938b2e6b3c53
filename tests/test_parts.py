"""Parts staff choose (`release --parts`), the handout document, and one registration per
graded feature: every fence has a case, a new rule is found without touching a list."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from autograder_helpers import assert_valid_results

from autograder.case import all_cases
from autograder.demo import run_demo
from autograder.document import HEADING, points
from autograder.fences import fenced_functions, function_sections
from autograder.manifest import PARTS
from autograder.parts import assignment, check_parts
from autograder.release import check_release, release
from conftest import REPO

SMALL = ("model", "optimizer")


@pytest.fixture(scope="module", params=[None, SMALL], ids=["all-parts", "model-optimizer"])
def released(request, tmp_path_factory) -> tuple[tuple[str, ...], Path]:
    out = tmp_path_factory.mktemp("release") / "handout"
    release(REPO, out, request.param)
    return request.param or tuple(PARTS), out


def test_release_check_is_clean_and_every_citation_resolves(released):
    """check_release includes `unresolved_citations`: every "handout N.M" of a released
    file is a heading of HANDOUT.md, or in a part its appendix lists as shipping solved."""
    parts, out = released
    assert check_release(REPO, out) == []
    text = (out / "HANDOUT.md").read_text()
    sections = set(HEADING.findall(text))
    for fence, part in fenced_functions(REPO).items():
        rel, _, qualname = fence.partition(":")
        cited = function_sections((out / rel).read_text(), rel)[qualname]
        assert cited, fence
        if part in parts:
            assert cited in sections, fence
        else:
            assert f"- **{PARTS[part].section} {PARTS[part].title}**" in text, fence


def test_parts_out_ship_solved_and_their_cases_are_not_graded(released):
    parts, out = released
    chosen = assignment(out)
    assert tuple(chosen["parts"]) == parts
    bpe = (out / "bpe.py").read_text()
    if "tokenizer" in parts:
        assert "TODO bpe.py count_pairs (handout 5.1)" in bpe and "bpe.py" in chosen["gradable"]
    else:
        assert "TODO" not in bpe and "### BEGIN SOLUTION" not in bpe
        assert "return (count, left, right)" in bpe  # the reference's pair_key, solved
        assert "bpe.py" not in chosen["gradable"] and chosen["predictions"] == []
        assert not any(c.group == "bpe" for c in all_cases(parts=parts))
        text = (out / "HANDOUT.md").read_text()
        assert "## 5. The tokenizer" not in text
        assert "- **5 The tokenizer** (`bpe.py`): ships solved;" in text
    assert "bash setup.sh" in (out / "README.md").read_text()


def test_points_table_equals_the_cases_points(released):
    parts, out = released
    cases = all_cases(parts=parts)
    table = points(REPO, parts)
    assert set(table) == set(parts)
    for name in parts:
        mine = [c for c in cases if c.part == name]
        assert table[name]["visible"] == sum(c.points for c in mine if c.visible)
        assert table[name]["hidden"] == sum(c.points for c in mine if not c.visible)
    total = sum(c.points for c in cases) + sum(row["predictions"] for row in table.values())
    assert f"**{total:g}**" in (out / "HANDOUT.md").read_text()


def test_every_fenced_function_has_a_case():
    graded = {function for case in all_cases() for function in case.grades}
    assert set(fenced_functions(REPO)) - graded == set()


def test_unknown_parts_are_refused_by_name():
    with pytest.raises(ValueError, match="unknown: \\['lora2'\\]"):
        check_parts(["model", "lora2"])
    result = subprocess.run([sys.executable, "-m", "autograder", "release", "--out", "x",
                             "--parts", "nope"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2 and "invalid choice: 'nope'" in result.stderr


def test_demo_of_a_smaller_assignment(tmp_path, capsys):
    """Untouched handout 0, reference full marks, only the chosen parts' cases (the demo
    of every part runs in tests/test_autograder.py)."""
    assert run_demo(tmp_path / "results.json", parts=list(SMALL)) == 0
    data = json.loads((tmp_path / "results.json").read_text())
    assert_valid_results(data)
    assert [t["extra_data"]["case"] for t in data["tests"]] == [c.name for c in all_cases(parts=SMALL)]
    assert "[demo] as expected" in capsys.readouterr().out


NEW_RULE_FENCE = '''

def triple(x: float) -> float:
    """Three times x (handout 4)."""
    ### BEGIN SOLUTION
    return 3.0 * x
    ### END SOLUTION
'''
NEW_RULE_PRODUCER = '''import numpy as np


def triple(params):
    from optimizer import triple as student

    return {"out": np.array([student(x) for x in params["xs"]], dtype=np.float64)}


PRODUCERS = {"triple": triple}
'''
# What the optimizer's case module gains: a rule and a visible case above its staff block,
# a hidden case and a mutant inside it.
NEW_RULE_SHIPPED = '''RULES["triple"] = "triple returns three times x"
CASES += [Case("triple/visible_three", "triple", {"xs": [1.0, -2.5]}, 1.0, ("triple",),
               "visible: triple: three times x", visibility="visible",
               grades=("optimizer.py:triple",))]
'''
NEW_RULE_STAFF = '''CASES += [Case("triple/three", "triple", {"xs": [0.5, 4.0, -7.0]}, 2.0, ("triple",),
               "triple: three times x", grades=("optimizer.py:triple",))]
MUTANTS["triple_doubles"] = ("triple", "optimizer.py", "return 3.0 * x", "return 2.0 * x")
'''
NEW_RULE_PROSE = "\n`triple(x)` returns three times `x`.\n"
NEW_RULE_FILES = {"optimizer.py", "autograder/cases/optimizer.py", "autograder/producers/triple.py",
                  "handout/optimizer.md", "autograder/reference/visible.npz",
                  "autograder/reference/hidden.npz"}


def changed_files(kit: Path) -> set[str]:
    """The files of `kit` that differ from (or are not in) the repository."""
    changed = set()
    for path in kit.rglob("*"):
        rel = path.relative_to(kit).as_posix()
        if path.is_file() and "__pycache__" not in rel and (
                not (REPO / rel).is_file() or (REPO / rel).read_bytes() != path.read_bytes()):
            changed.add(rel)
    return changed


def test_a_new_graded_function_is_its_fence_its_case_module_its_producer_and_its_prose(tmp_path):
    """In a copy of the kit, a new graded function of the optimizer part touches its fence,
    the part's case module (rule, visible and hidden case, mutant), a producer and the
    part's prose; then build-reference.  Grading finds it (the reference passes, its mutant
    loses exactly its cases), the release fences it, lists it in the points table and ships
    its visible case alone, and `check` in the handout runs it."""
    kit = tmp_path / "kit"
    shutil.copytree(REPO, kit, ignore=shutil.ignore_patterns(
        ".git", ".venv", "tests", "bench", "__pycache__", "data", "predictions", "shared"))
    shutil.copytree(REPO / "data", kit / "data", ignore=shutil.ignore_patterns(
        "*.csv", "*.txt", "*.bin", "__pycache__"))
    (kit / "optimizer.py").write_text((kit / "optimizer.py").read_text() + NEW_RULE_FENCE)
    (kit / "autograder" / "producers" / "triple.py").write_text(NEW_RULE_PRODUCER)
    module = kit / "autograder" / "cases" / "optimizer.py"
    text = module.read_text()
    text = text.replace("### BEGIN STAFF\n", NEW_RULE_SHIPPED + "### BEGIN STAFF\n")
    module.write_text(text.replace("### END STAFF\n", NEW_RULE_STAFF + "### END STAFF\n"))
    prose = kit / "handout" / "optimizer.md"
    prose.write_text(prose.read_text() + NEW_RULE_PROSE)
    env = {**os.environ, "PYTHONPATH": str(kit)}

    def run(*args: str, cwd: Path = kit) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=300)

    built = run("build-reference")
    assert built.returncode == 0, built.stderr[-3000:]
    assert changed_files(kit) == NEW_RULE_FILES
    submission = tmp_path / "submission"
    submission.mkdir()
    for name, body in (("reference", "return 3.0 * x"), ("mutant", "return 2.0 * x")):
        source = (kit / "optimizer.py").read_text()
        (submission / "optimizer.py").write_text(source.replace("return 3.0 * x", body))
        graded = run("grade", str(submission), "--only", "triple", "--json",
                     str(tmp_path / f"{name}.json"))
        assert graded.returncode == 0, graded.stderr[-3000:]
        data = json.loads((tmp_path / f"{name}.json").read_text())
        status = "passed" if name == "reference" else "failed"
        assert [(t["extra_data"]["case"], t["status"]) for t in data["tests"]] == [
            ("triple/visible_three", status), ("triple/three", status)], name
    handout = tmp_path / "handout"
    released = run("release", "--out", str(handout))
    assert released.returncode == 0, released.stdout[-3000:] + released.stderr[-3000:]
    assert "TODO optimizer.py triple (handout 4)" in (handout / "optimizer.py").read_text()
    assert "`triple` (`optimizer.py`)" in (handout / "HANDOUT.md").read_text()
    shipped = (handout / "autograder" / "cases" / "optimizer.py").read_text()
    assert "triple/visible_three" in shipped and "triple/three" not in shipped
    checked = run("check", "--only", "triple", cwd=handout)
    assert "TODO optimizer.py triple (handout 4)" in checked.stdout, checked.stdout[-3000:]

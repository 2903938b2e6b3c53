"""The research part of the autograder (handout 9): its cases against trusted float64
versions and the reference, and the untouched handout.  Its mutants (`autograder/cases/
research.py` `MUTANTS`, run by `tests/test_autograder_mutants.py`) are graded on the
research group alone: its functions (`modules/positions.py`'s ALiBi and rotary functions,
`swiglu`, `z_loss`, `mu_center_`) are reached by no case of another part, whose
configurations use learned positions and the tanh-GELU MLP (checked below).
"""

from __future__ import annotations

import math

import pytest
import torch
from autograder_helpers import REPO, assert_valid_results, reference_submission

from autograder import grade as grade_module
from autograder import npzio
from autograder.case import all_cases
from autograder.grade import grade
from autograder.judge import compare
from autograder.producers import research
from autograder.release import fenced_lines, release

GROUP = "research"


def press_slopes(n: int) -> list[float]:
    """ALiBi slopes as Press et al.'s code computes them (its recursion, float64)."""
    def power_of_two(n: int) -> list[float]:
        start = 2 ** (-2 ** -(math.log2(n) - 3))
        return [start * start ** i for i in range(n)]

    if math.log2(n).is_integer():
        return power_of_two(n)
    closest = 2 ** math.floor(math.log2(n))
    return power_of_two(closest) + press_slopes(2 * closest)[0::2][: n - closest]


def _rotate_complex(x, cos, sin, layout):
    """Pairs as complex numbers a + ib times e^(i angle), float64; the rest unchanged."""
    half = cos.shape[-1]
    x = x.double()
    if layout == "half":
        a, b = x[..., :half], x[..., half:2 * half]
    else:
        a, b = x[..., 0:2 * half:2], x[..., 1:2 * half:2]
    turned = torch.complex(a, b) * torch.complex(cos.double(), sin.double())
    if layout == "half":
        pairs = torch.cat([turned.real, turned.imag], dim=-1)
    else:
        pairs = torch.stack([turned.real, turned.imag], dim=-1).flatten(-2)
    return torch.cat([pairs, x[..., 2 * half:]], dim=-1).float()


def _tables(positions, r, theta):
    angles = positions.double()[:, None, :, None] * torch.tensor(
        [theta ** (-2 * k / r) for k in range(r // 2)], dtype=torch.float64)
    return angles.cos().float(), angles.sin().float()


def _z_loss(logits, gamma):
    x = logits.double()
    top = x.max(dim=-1, keepdim=True).values
    lse = top.squeeze(-1) + (x - top).exp().sum(dim=-1).log()
    return (gamma * lse.square().mean()).float()


def _mu_center(embedding):
    embedding.copy_(embedding.double() - embedding.double().mean(dim=0))
    return embedding


# "<module>:<function>" -> a trusted float64 version of a research fence
TRUSTED = {
    "modules.positions:alibi_slopes": lambda h: torch.tensor(press_slopes(h)).float(),
    "modules.positions:alibi_bias": lambda s, q, k: (
        s.double()[None, :, None, None]
        * (k.double()[:, None, None, :] - q.double()[:, None, :, None])).float(),
    "modules.positions:rotary_tables": _tables,
    "modules.positions:rotate_half": lambda x, c, s: _rotate_complex(x, c, s, "half"),
    "modules.positions:rotate_interleaved": lambda x, c, s: _rotate_complex(x, c, s,
                                                                              "interleaved"),
    "modules.mlp:swiglu": lambda g, v: g * torch.sigmoid(g) * v,
    "training.losses:z_loss": _z_loss,
    "training.losses:mu_center_": _mu_center,
}


def _research_cases():
    return [case for case in all_cases() if case.group == GROUP]


def test_research_cases_cover_every_research_fence_visible_and_hidden():
    """Each research fence has a visible and a hidden case; each case states its rules and
    a tolerance; the slopes cases include a head count that is not a power of two."""
    cases = _research_cases()
    fences = {function for case in cases for function in case.grades}
    assert len(fences) == 8
    for function in fences:
        kinds = {case.visible for case in cases if function in case.grades}
        assert kinds == {True, False}, function
    for case in cases:
        assert case.rules and case.atol <= 1e-5 and case.rtol <= 1e-5, case.name
    for case in (c for c in cases if c.producer == "alibi_slopes"):
        assert any(h & (h - 1) for h in case.params["heads"]), case.name


def test_other_parts_cases_never_reach_the_research_functions():
    """The premise of grading only the research group: no other case configures ALiBi,
    rotary embeddings or SwiGLU, and none calls the losses."""
    for case in all_cases():
        if case.group == GROUP:
            continue
        config = case.params.get("config", {})
        assert config.get("position_encoding", "learned") == "learned", case.name
        assert config.get("mlp", "gelu_tanh") == "gelu_tanh", case.name
        assert not {"z_loss", "mu_loss", "mu_centering"} & set(config), case.name


@pytest.mark.parametrize("function", sorted(TRUSTED))
def test_reference_outputs_equal_trusted_float64_versions(function, monkeypatch, tmp_path):
    """Each research case's checked-in reference arrays equal what its producer gives with
    the graded function replaced by a trusted float64 version, at the case's tolerance
    (the arrays go through `npzio` as the child's do)."""
    module, _, name = function.partition(":")
    monkeypatch.setattr(f"{module}.{name}", TRUSTED[function])
    reference = grade_module.load_reference(grade_module.Layout.detect())
    rel = module.replace(".", "/") + ".py"
    cases = [c for c in _research_cases() if c.grades == (f"{rel}:{name}",)]
    assert cases
    for case in cases:
        npzio.save(tmp_path / "out.npz", research.PRODUCERS[case.producer](case.params))
        for key, value in npzio.load(tmp_path / "out.npz").items():
            expected = reference[f"{case.name}/{key}"]
            assert compare(key, value, expected, case.atol, case.rtol) is None, case.name


def test_reference_scores_full_marks_on_the_research_cases(tmp_path):
    data = grade(reference_submission(tmp_path / "reference"), only=[GROUP], predictions=False)
    assert_valid_results(data)
    assert [(t["extra_data"]["case"], t["status"]) for t in data["tests"]] == [
        (case.name, "passed") for case in _research_cases()]
    assert data["score"] == sum(case.points for case in _research_cases())


def test_untouched_handout_scores_zero_on_research_with_todo_names(tmp_path):
    """Every research case fails on the untouched handout, and its feedback names the TODO
    of the function it grades, with its handout section."""
    handout = tmp_path / "handout"
    release(REPO, handout)
    data = grade(handout, only=[GROUP], predictions=False)
    assert_valid_results(data)
    cases = {case.name: case for case in _research_cases()}
    assert data["score"] == 0 and [t["extra_data"]["case"] for t in data["tests"]] == list(cases)
    for test in data["tests"]:
        (function,) = cases[test["extra_data"]["case"]].grades
        rel, _, qualname = function.partition(":")
        assert f"NotImplementedError: TODO {rel} {qualname} (handout 9." in test["output"], test


def test_no_released_file_carries_a_research_solution_line(tmp_path):
    """The producers' folder ships with the handout, so no trusted helper there (or any
    other released file) may hold a line of a research fence: the release check looks for
    solution lines in their own file only."""
    out = tmp_path / "handout"
    release(REPO, out)
    secret = {line for lines in fenced_lines(REPO, ("research",)).values() for line in lines}
    assert secret
    for path in sorted(out.rglob("*.py")):
        found = secret & {line.strip() for line in path.read_text().splitlines()}
        assert not found, f"{path.relative_to(out)} carries {sorted(found)}"

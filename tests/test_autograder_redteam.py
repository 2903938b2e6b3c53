"""Hostile submissions (tests/redteam/*): each must score 0 on what it attacks, leave a valid
results.json that is the grader's own, and finish within its time limit."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest
from autograder_helpers import FAST, REPO, assert_valid_results, group_score, reference_submission

from autograder import sandbox
from autograder.batch import grade_all
from autograder.grade import grade
from autograder.isolation import Isolation

REDTEAM = REPO / "tests" / "redteam"
ATTACKS = sorted(p.name for p in REDTEAM.iterdir() if (p / "attack.json").is_file())


def build(name: str, tmp_path: Path, results: Path, marker: Path) -> tuple[Path, dict]:
    """The submission (folder or zip) of one attack, templated as attack.json says."""
    source = REDTEAM / name
    meta = json.loads((source / "attack.json").read_text())
    replacements = {"__REPO__": str(REPO), "__RESULTS__": str(results), "__MARKER__": str(marker)}
    if "zip_members" in meta:
        path = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for member in meta["zip_members"]:
                info = zipfile.ZipInfo(member["name"])
                if "symlink" in member:
                    info.external_attr = 0o120777 << 16
                    target = member["symlink"].replace("__REPO__", str(REPO))
                    archive.writestr(info, target)
                elif "zeros_mb" in member:
                    with archive.open(info, "w", force_zip64=True) as handle:
                        for _ in range(member["zeros_mb"]):
                            handle.write(bytes(1 << 20))
                else:
                    archive.writestr(info, member["text"])
        return path, meta
    folder = tmp_path / name
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("attack.json"))
    for stored, real in meta.get("rename", {}).items():
        (folder / stored).rename(folder / real)
    if meta.get("template"):
        for path in (p for p in folder.rglob("*") if p.is_file()):
            text = path.read_text()
            for old, new in replacements.items():
                text = text.replace(old, new)
            path.write_text(text)
    for index in range(meta.get("many_files", 0)):
        (folder / "junk" / f"{index // 1000}").mkdir(parents=True, exist_ok=True)
        (folder / "junk" / f"{index // 1000}" / f"f{index}.txt").write_text("x")
    return folder, meta


def repo_autograder_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted((REPO / "autograder").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def hidden_labels_present():
    """Make sure the file the label-reading attack opens exists (a fresh clone has no
    autograder/hidden/), so that attack fails for lack of permission, not of the file."""
    labels = REPO / "autograder" / "hidden" / "sst-test-labels.csv"
    created = not labels.exists()
    if created:
        labels.parent.mkdir(parents=True, exist_ok=True)
        labels.write_text("id,label\nplaceholder,0\n")
    yield labels
    if created:
        labels.unlink(missing_ok=True)


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_scores_zero_and_leaves_valid_results(name, tmp_path, request):
    if name == "read_hidden_labels":
        request.getfixturevalue("hidden_labels_present")
    results = tmp_path / "results" / "results.json"
    marker = Path("/tmp") / f"redteam-marker-{os.getpid()}-{name}"
    marker.unlink(missing_ok=True)
    submission, meta = build(name, tmp_path, results, marker)
    before = repo_autograder_digest()
    start = time.monotonic()
    data = grade(submission, json_path=results, only=meta["only"], limits=FAST)
    elapsed = time.monotonic() - start

    assert elapsed < meta["max_seconds"], f"{name}: grading took {elapsed:.1f}s"
    written = json.loads(results.read_text())
    assert written == data, "results.json is not the grader's own"
    assert_valid_results(written)
    if meta.get("expect_refused"):
        assert written["score"] == 0 and written["tests"] == []
        assert "refused" in written["output"] or "larger than" in written["output"]
        return
    assert written["tests"], written["output"]
    if "attacked_cases" in meta:
        for name in meta["attacked_cases"]:
            hit = [t for t in written["tests"] if t["extra_data"]["case"] == name]
            assert hit and hit[0]["score"] == 0, hit
    else:
        for group in meta["only"]:
            assert group_score(written, group) == 0, [t["output"] for t in written["tests"]]
        assert written["score"] == 0
    if meta.get("expect_stub"):
        assert all("NotImplementedError: TODO" in t["output"] for t in written["tests"])
    if name == "read_hidden_labels":
        assert all("PermissionError" in t["output"] for t in written["tests"]), written["tests"]
    if "expect_in_output" in meta:
        assert all(meta["expect_in_output"] in t["output"] for t in written["tests"]), \
            [t["output"][:300] for t in written["tests"]]
    for ignored in meta.get("expect_ignored", []):
        assert ignored in written["output"]
    if meta.get("many_files"):
        assert f"ignored {meta['many_files']} file(s)" in written["output"]
    time.sleep(1.0 if meta.get("template") else 0.0)
    assert json.loads(results.read_text()) == data, "results.json changed after grading"
    assert not marker.exists(), "a process of the submission outlived the grading run"
    assert repo_autograder_digest() == before, "the autograder's files were modified"


def editable_finder_venv(folder: Path) -> Path:
    """A venv whose site-packages holds setuptools' editable-install finder mapping the
    kit's packages and modules to this staff tree (what `pip install -e .` writes), and
    a .pth line to the grader's own packages.  Returns its Python."""
    from setuptools.command.editable_wheel import _finder_template

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    packages = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                                    "get_paths()['purelib'])"], capture_output=True, text=True,
                                   check=True).stdout.strip())
    mapping = {"autograder": str(REPO / "autograder"), "evaluation": str(REPO / "evaluation.py")}
    (packages / "__editable___build_gpt2_finder.py").write_text(
        _finder_template("build_gpt2", mapping, {}))
    (packages / "__editable__.build_gpt2.pth").write_text(
        "import __editable___build_gpt2_finder; __editable___build_gpt2_finder.install()\n")
    (packages / "grader_packages.pth").write_text("\n".join(sandbox.PACKAGE_DIRS) + "\n")
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    python.chmod(0o755)
    return python


def test_editable_install_of_the_kit_does_not_reach_the_child(tmp_path, monkeypatch):
    """With the kit installed in place (an editable finder in site-packages), the child
    still imports no staff module: it runs with -S and gets the package folders alone.
    The same finder does map them for an ordinary run of that Python (the attack is real)."""
    folder = Path(tempfile.mkdtemp(prefix="gpt2-editable-"))  # traversable by gpt2grader
    try:
        python = editable_finder_venv(folder / "venv")
        packages = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                                   "get_paths()['purelib'])"], capture_output=True, text=True,
                                  check=True).stdout.strip()
        leak = subprocess.run([str(python), "-I", "-c", "import autograder.reference"],
                              cwd="/", capture_output=True, text=True)
        assert leak.returncode == 0, leak.stderr  # the finder works outside the sandbox
        monkeypatch.setattr(sandbox, "PACKAGE_DIRS", [packages, *sandbox.PACKAGE_DIRS])
        monkeypatch.setattr(sandbox.sys, "executable", str(python))
        submission, meta = build("import_staff_modules", tmp_path, tmp_path / "r.json",
                                 tmp_path / "marker")
        data = grade(submission, only=meta["only"], limits=FAST)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert data["tests"] and data["score"] == 0, data["output"]
    assert all(meta["expect_in_output"] in t["output"] for t in data["tests"]), data["tests"]


def test_startup_hooks_never_ran():
    ran = [p for p in Path("/tmp").glob("redteam-*-ran")]
    assert ran == [], f"submission startup hooks executed: {ran}"


@pytest.mark.parametrize("name", ["daemon_rewrites_results", "fork_bomb", "results_json_write"])
def test_attack_without_namespaces_still_contained(name, tmp_path, monkeypatch):
    """Where unshare is refused (some Docker setups), the sandbox user and the sweep of its
    processes must still contain the attack."""
    if os.geteuid() != 0:
        pytest.skip("the fallback contains daemons through a dedicated user: needs root")
    # Its own user, so that sweeping that user's processes cannot hit other tests' children.
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    "gpt2grader-fallback"], capture_output=True)
    entry = pwd.getpwnam("gpt2grader-fallback")
    fallback = Isolation([], (entry.pw_uid, entry.pw_gid),
                                 ["no namespaces (forced by the test)"])
    monkeypatch.setattr(sandbox, "isolation", lambda: fallback)
    results = tmp_path / "results" / "results.json"
    marker = Path("/tmp") / f"redteam-marker-{os.getpid()}-fallback-{name}"
    marker.unlink(missing_ok=True)
    submission, meta = build(name, tmp_path, results, marker)
    data = grade(submission, json_path=results, only=meta["only"], limits=FAST)
    assert "no namespaces (forced by the test)" in data["output"]
    assert data["score"] == 0 and data["tests"]
    time.sleep(1.0)
    assert json.loads(results.read_text()) == data
    assert not marker.exists(), "a process of the submission outlived the grading run"


def test_fork_bomb_graded_beside_an_honest_submission_leaves_it_alone(tmp_path):
    """Parallel runs get sandbox users of their own, so one run's fork bomb cannot exhaust
    the process limit of another."""
    folder = tmp_path / "class"
    shutil.copytree(REDTEAM / "fork_bomb", folder / "mallory",
                    ignore=shutil.ignore_patterns("attack.json"))
    reference_submission(folder / "alice")
    rows = {row["student"]: row for row in
            grade_all(folder, tmp_path / "gradebook.csv", jobs=2, only=["attention"])}
    assert rows["mallory"]["score"] == 0
    assert rows["alice"]["score"] == rows["alice"]["max_score"] > 0


# Each fenced function refuses the library calls that would do its job
# (its case module's FORBIDDEN): in its source (the judge's scan names file, line and
# call) and at run time, through any other function (the child's guard).
ATTENTION_MASK = (
    "        B, H, T_q, d = query.shape\n"
    "        T_k = key.shape[2]\n"
    "        causal = torch.ones(T_q, T_k, dtype=torch.bool, device=query.device).tril(T_k - T_q)\n"
    "        mask = attention_mask.masked_fill(~causal, torch.finfo(query.dtype).min)\n")
FORBIDDEN_ATTACKS = {
    "sdpa_in_attention": (
        "modules/attention.py", "CausalSelfAttention.attention", "attention",
        ATTENTION_MASK
        + "        p = self.dropout.p if self.training else 0.0\n"
        "        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, "
        "dropout_p=p)\n"
        "        return out.transpose(1, 2).reshape(B, T_q, H * d)\n",
        "modules/attention.py:{line}: CausalSelfAttention.attention uses "
        "torch.nn.functional.scaled_dot_product_attention"),
    "solved_sdpa_attention_from_attention": (
        "modules/attention.py", "CausalSelfAttention.attention", "attention",
        "        return self.sdpa_attention(key, query, value, attention_mask)\n",
        "refused call: torch.nn.functional.scaled_dot_product_attention, made at "
        "modules/attention.py:"),
    "sdpa_through_torch_ops": (
        "modules/attention.py", "CausalSelfAttention.attention", "attention",
        ATTENTION_MASK
        + "        out = torch.ops.aten.scaled_dot_product_attention(query, key, value, mask)\n"
        "        return out.transpose(1, 2).reshape(B, T_q, H * d)\n",
        "modules/attention.py:{line}: CausalSelfAttention.attention uses "
        "torch.ops.aten.scaled_dot_product_attention"),
    "sdpa_math_kernel_by_a_built_name": (
        "modules/attention.py", "CausalSelfAttention.attention", "attention",
        ATTENTION_MASK
        + "        kernel = getattr(torch.ops.aten, '_scaled_dot_product_' + 'attention_math')\n"
        "        out = kernel(query, key, value, mask)[0]\n"
        "        return out.transpose(1, 2).reshape(B, T_q, H * d)\n",
        "refused call: torch.nn.functional.scaled_dot_product_attention, made at "
        "modules/attention.py:"),
    "transformers_eager_attention_forward": (
        "modules/attention.py", "CausalSelfAttention.attention", "attention",
        "        from transformers.models.gpt2.modeling_gpt2 import eager_attention_forward\n"
        + ATTENTION_MASK
        + "        out, _ = eager_attention_forward(self, query, key, value, mask, "
        "dropout=self.dropout.p)\n"
        "        return out.reshape(B, T_q, H * d)\n",
        "modules/attention.py:{line}: CausalSelfAttention.attention uses "
        "transformers.models.gpt2.modeling_gpt2.eager_attention_forward"),
    "transformers_attention_by_a_built_name": (
        "modules/attention.py", "CausalSelfAttention.attention", "attention",
        "        import importlib\n"
        "        hf = importlib.import_module('trans' + 'formers.models.gpt2.modeling_gpt2')\n"
        + ATTENTION_MASK
        + "        out, _ = hf.eager_attention_forward(self, query, key, value, mask, "
        "dropout=self.dropout.p)\n"
        "        return out.reshape(B, T_q, H * d)\n",
        "refused call: transformers ("),
    "solved_visible_keys_in_attention": (
        "modules/attention.py", "CausalSelfAttention.attention", "attention",
        "        B, H, T_q, d = query.shape\n"
        "        causal = visible_keys(T_q, key.shape[2]).to(query.device)\n"
        "        scores = (query @ key.transpose(-1, -2) / math.sqrt(d)).masked_fill(\n"
        "            ~causal, torch.finfo(query.dtype).min) + attention_mask\n"
        "        probs = self.dropout(torch.softmax(scores, dim=-1))\n"
        "        return (probs @ value).transpose(1, 2).reshape(B, T_q, H * d)\n",
        "refused call: modules.attention.visible_keys, made at modules/attention.py:"),
    "visible_keys_read_off_the_solved_attention": (
        "modules/attention.py", "visible_keys", "window",
        "    import types\n"
        "    probe = types.SimpleNamespace(dropout=torch.nn.Identity())\n"
        "    zeros = torch.zeros(1, 1, T_k, T_k)\n"
        "    probs = CausalSelfAttention.attention(probe, zeros, zeros[:, :, :T_q], "
        "torch.eye(T_k)[None, None], torch.zeros(1, 1, 1, T_k))\n"
        "    query_at = torch.arange(T_k - T_q, T_k)[:, None]\n"
        "    key_at = torch.arange(T_k)[None, :]\n"
        "    band = (key_at > query_at - window) | (key_at < sinks) if window else True\n"
        "    return (probs[0] > 0) & band\n",
        "refused call: modules.attention.CausalSelfAttention, made at modules/attention.py:"),
    "torch_adamw_in_step": (
        "optimizer.py", "AdamW.step", "optimizer",
        "        for group in self.param_groups:\n"
        "            inner = torch.optim.AdamW(group['params'], lr=group['lr'], "
        "betas=group['betas'], eps=group['eps'], weight_decay=group['weight_decay'])\n"
        "            inner.step()\n",
        "optimizer.py:{line}: AdamW.step uses torch.optim.AdamW"),
    "torch_adamw_by_a_built_name": (
        "optimizer.py", "AdamW.step", "optimizer",
        "        make = getattr(__import__('torch').optim, 'Adam' + 'W')\n"
        "        for group in self.param_groups:\n"
        "            make(group['params'], lr=group['lr'], betas=group['betas']).step()\n",
        "refused call: torch.optim ("),
}


def replace_fence(path: Path, qualname: str, body: str) -> int:
    """Put `body` in place of the fenced block of `qualname` in `path`; the 1-based line
    the body starts at."""
    from autograder.fences import find_fences

    text = path.read_text()
    fence = next(f for f in find_fences(path.name, text) if f.qualname == qualname)
    lines = text.splitlines(keepends=True)
    lines[fence.begin - 1 : fence.end] = [body]
    path.write_text("".join(lines))
    return fence.begin


@pytest.mark.parametrize("name", sorted(FORBIDDEN_ATTACKS))
def test_forbidden_call_scores_zero_and_is_named(name, tmp_path):
    rel, qualname, group, body, expected = FORBIDDEN_ATTACKS[name]
    submission = reference_submission(tmp_path / "submission")
    start = replace_fence(submission / rel, qualname, body)
    data = grade(submission, only=[group])
    assert data["tests"] and group_score(data, group) == 0, data["output"]
    lines = [start + i for i, line in enumerate(body.splitlines()) if "torch.optim" in line
             or "scaled_dot_product" in line or "import eager" in line]
    wanted = expected.format(line=lines[0] if lines else "")
    assert all(wanted in t["output"] for t in data["tests"]), \
        [t["output"][:300] for t in data["tests"]]


def test_every_part_declares_the_calls_it_refuses():
    from autograder.case import case_modules
    from autograder.fences import fenced_functions

    modules = case_modules()
    assert set(fenced_functions(REPO).values()) <= set(modules)
    assert all(module.FORBIDDEN for module in modules.values())
    assert "torch.nn.functional.scaled_dot_product_attention" in modules["model"].FORBIDDEN
    assert "torch.nn.functional.scaled_dot_product_attention" not in modules["sdpa"].FORBIDDEN


def shop(handout: Path, work: Path, *only: str) -> dict:
    """tests/redteam/shopping.py on `handout` (offline, no terminal), its JSON answer."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    work.mkdir()
    result = subprocess.run(
        [sys.executable, str(REDTEAM / "shopping.py"), str(handout),
         str(REPO / "autograder" / "producers" / "solutions.py"), str(work / "out.json"), *only],
        cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((work / "out.json").read_text())


# assignment -> its parts; every other part ships solved in its release.
SHOPPING_RELEASES = {"core": ("model", "optimizer", "tokenizer"),
                     "extensions": ("sdpa", "lora", "dpo", "research", "tasks", "quantize",
                                    "reft", "preconditioned", "smart", "window", "ensemble")}


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> dict[str, Path]:
    """The handout of each assignment of SHOPPING_RELEASES, released once."""
    from autograder.release import release

    made = {}
    for name, parts in SHOPPING_RELEASES.items():
        made[name] = tmp_path_factory.mktemp(name) / "handout"
        release(REPO, made[name], parts)
    return made


@pytest.mark.parametrize("assignment", sorted(SHOPPING_RELEASES))
def test_no_solved_callable_is_a_drop_in_for_a_graded_function(assignment, releases, tmp_path):
    """The shopping attack: every callable the release ships solved, with trivial glue,
    as each graded function that has a visible case of its own; none scores."""
    answer = shop(releases[assignment], tmp_path / "shop")
    expected = {"core": {"modules/attention.py:CausalSelfAttention.attention",
                         "optimizer.py:AdamW.step", "bpe.py:count_pairs"},
                "extensions": {"modules/lora.py:LoRALinear.forward", "dpo.py:dpo_loss",
                               "optimizer.py:newton_schulz", "optimizer.py:Muon.step",
                               "modules/positions.py:rotary_tables",
                               "modules/quantize.py:quantize_int8",
                               "modules/quantize.py:Int8Linear.forward",
                               "modules/reft.py:LoReFTIntervention.forward",
                               "training/smart.py:smart_loss",
                               "modules/attention.py:visible_keys",
                               "training/finetune.py:ensemble_probabilities"}}[assignment]
    assert expected <= set(answer["functions"]), answer["functions"]
    assert answer["tried"] > 100, answer
    assert answer["scored"] == [], answer["scored"]


def test_shopping_finds_a_helper_that_recomputes_the_scores(releases, tmp_path):
    """The attack is real: planted back, the helpers that once shipped solved in
    modules/attention_variants.py (the masked scaled scores, the head merge) make a
    two-line attention score."""
    handout = tmp_path / "handout"
    shutil.copytree(releases["core"], handout)
    (handout / "modules" / "attention_variants.py").open("a").write(
        "\n\ndef _masked_scores(key, query, mask):\n"
        "    T_q, T_k = query.shape[2], key.shape[2]\n"
        "    scores = query @ key.transpose(-1, -2) / math.sqrt(query.shape[-1])\n"
        "    causal = torch.ones(T_q, T_k, dtype=torch.bool, device=query.device).tril(T_k - T_q)\n"
        "    return scores.masked_fill(~causal, torch.finfo(scores.dtype).min) + mask\n")
    answer = shop(handout, tmp_path / "shop", "modules/attention.py:CausalSelfAttention.attention")
    assert any("_masked_scores" in line for line in answer["scored"]), answer

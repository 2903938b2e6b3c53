"""The one place that declares which files are what.

- HANDOUT_FILES: copied into the student handout (fenced blocks replaced by TODOs), with
  every .py file of HANDOUT_FOLDERS.
- Gradable files, what a student may change and submit, are not listed: they are the
  handout's files that hold a fenced function of the assignment's parts
  (`autograder/parts.py` `assignment`).  A file with nothing to grade
  (`models/base_gpt.py`, `config.py`, `utils.py`) always comes from the handout, and a
  submitted copy is listed as ignored.  Student code may import the standard library and
  the packages of `pyproject.toml` (`autograder/environment.py`).
- PREDICTION_FILES: prediction outputs a submission must carry (graded by the judge alone).
- STAFF_ONLY: never leave the staff tree (hidden labels and reference outputs, staff
  tests, CI, the trusted solutions `SOLUTIONS`), even from HANDOUT_FOLDERS.  Hidden cases
  and mutants sit in their case module's staff block, which the release drops.
- PARTS: the parts staff choose from (`release --parts`, `build --parts`), in handout
  order.  A fenced function belongs to the part whose section its docstring cites
  ("(handout 3.1)" is in part "model", section 3); a case belongs to the part of its case
  module, `autograder/cases/<part>.py`, whose functions it grades (`Case.grades`).
  Adding a part is one entry here, its prose file under `handout/` and its case module.
- CHAPTERS: prose that opens a numbered chapter made of several parts (chapter 7).
Paths are relative to the repository root and use "/".
"""

from __future__ import annotations

from dataclasses import dataclass

HANDOUT_FILES: tuple[str, ...] = (
    "config.py",
    "utils.py",
    "models/__init__.py",
    "models/base_gpt.py",
    "models/gpt2.py",
    "models/generate.py",
    "modules/__init__.py",
    "modules/attention.py",
    "modules/gpt2_layer.py",
    "modules/lora.py",
    "modules/quantize.py",
    "modules/reft.py",
    # research architectures (handout 9)
    "modules/attention_variants.py",
    "modules/common.py",
    "modules/mlp.py",
    "modules/positions.py",
    "modules/context.py",
    "training/losses.py",
    "optimizer.py",
    "optimizer_test.py",
    "bpe.py",
    "optimizer_test.npy",
    "sanity_check.py",
    "evaluation.py",
    "training/__init__.py",
    "training/args.py",
    "training/helpformat.py",
    "training/paths.py",
    "training/loading.py",
    "training/peft.py",
    "training/trainer.py",
    "training/optimizers.py",
    "training/schedule.py",
    "training/batches.py",
    "training/checkpoint.py",
    "training/metrics.py",
    "training/plots.py",
    "training/distributed.py",
    "training/finetune.py",
    "training/smart.py",
    "models/lm.py",
    "classifier.py",
    "paraphrase_detection.py",
    "sonnet_generation.py",
    "dpo.py",
    "ensemble.py",
    "data/__init__.py",
    "data/loaders.py",
    "data/pairs.py",
    "data/prepare.py",
    "data/README.md",
    "sbatch.sh",
    "prepare_submit.py",
    "pyproject.toml",
    "setup.sh",
    # pretraining (handout 8): corpus preparation, training, evaluation, checkpoint averaging
    "data/prepare_lm.py",
    "training/lm_data.py",
    "training/perplexity.py",
    "training/averaging.py",
    "evaluate_lm.py",
    "pretrain.py",
    # lm-evaluation-harness over any kit model, and the offline tasks
    "training/harness.py",
    "evals/__init__.py",
    "evals/kit_tasks.py",
    "evals/make_lastword.py",
    "evals/lastword.yaml",
    "evals/text.yaml",
    # a trained model leaves the kit: to transformers, and sampled from the command line
    "models/export.py",
    "export_hf.py",
    "sample.py",
    "training/pretrain_flags.py",
    "sbatch_pretrain.sh",
    "average_checkpoints.py",
    # activation-outlier analysis (handout 9): statistics, figures, command line
    "analysis/__init__.py",
    "analysis/outliers.py",
    "analysis/plots.py",
    # sweeps (handout 9): grids of pretrain.py runs, locally or as a Slurm array, summarised
    "sweep.py",
    "training/sweeps.py",
    "analysis/sweep_summary.py",
    "sbatch_sweep.sh",
    "sweeps/attention_variants.toml",
    "sweeps/centering.toml",
    "sweeps/sst_lr.toml",
    "autograder/__init__.py",
    "autograder/__main__.py",
    "autograder/manifest.py",
    "autograder/fences.py",
    "autograder/parts.py",
    # the student's local grader (`python -m autograder check`): visible cases only
    "autograder/batch.py",
    "autograder/case.py",
    "autograder/cases/__init__.py",
    "autograder/child.py",
    "autograder/course.py",
    "autograder/answers.py",
    "autograder/environment.py",
    "autograder/grade.py",
    "autograder/isolation.py",
    "autograder/judge.py",
    "autograder/latepolicy.py",
    "autograder/npzio.py",
    "autograder/predictions.py",
    "autograder/reference/visible.npz",
    "autograder/report.py",
    "autograder/sandbox.py",
    "autograder/unpack.py",
)

# Folders whose every .py file is a handout file (a new producer or case module needs no
# entry; a case module ships without its staff block).
HANDOUT_FOLDERS: tuple[str, ...] = ("autograder/producers", "autograder/cases")

PREDICTION_FILES: tuple[str, ...] = (
    "predictions/sst-dev-output.csv",
    "predictions/sst-test-output.csv",
    "predictions/cfimdb-dev-output.csv",
    "predictions/cfimdb-test-output.csv",
    "predictions/para-dev-output.csv",
    "predictions/para-test-output.csv",
    "predictions/generated_sonnets_dev.txt",
    "predictions/generated_sonnets.txt",
)

STAFF_ONLY: tuple[str, ...] = (
    "tests/",
    "bench/",
    ".ci/",
    "autograder/hidden/",  # hidden labels (data/prepare.py --staff)
    "autograder/reference/hidden.npz",  # their reference outputs
    "autograder/reference.py",  # build-reference (needs the solution)
    "autograder/release.py",  # the handout's documents and its checks
    "autograder/bundle.py",  # the Gradescope bundle
    "autograder/demo.py",
    "autograder/document.py",  # writes HANDOUT.md (reads the hidden cases' points)
    "autograder/release_data.py",  # release --data and its check
    "autograder/grade_all.sbatch",
    "autograder/similarity.py",  # copydetect is a staff tool (the dev pins)
    "autograder/producers/solutions.py",  # SOLUTIONS
)
# The trusted versions of fenced functions (their solutions): in the bundle and the staff
# tree only; the producers bind them through `autograder/producers/trusted.py`.
SOLUTIONS = "autograder/producers/solutions.py"


@dataclass(frozen=True)
class Part:
    section: str  # "3", or "7.1" for a part inside a chapter
    title: str
    prose: str  # the markdown file of its handout section
    predictions: tuple[str, ...] = ()  # prediction files a submission of this part carries


PARTS: dict[str, Part] = {
    "model": Part("3", "The model", "handout/model.md"),
    "optimizer": Part("4", "The optimizer", "handout/optimizer.md"),
    "tokenizer": Part("5", "The tokenizer", "handout/tokenizer.md"),
    "tasks": Part("6", "The tasks", "handout/tasks.md", PREDICTION_FILES),
    "sdpa": Part("7.1", "Fused attention", "handout/sdpa.md"),
    "lora": Part("7.2", "LoRA", "handout/lora.md"),
    "dpo": Part("7.3", "DPO", "handout/dpo.md"),
    "quantize": Part("7.4", "Quantization", "handout/quantize.md"),
    "reft": Part("7.5", "ReFT", "handout/reft.md"),
    "preconditioned": Part("7.6", "Preconditioned optimizers", "handout/preconditioned.md"),
    "smart": Part("7.7", "SMART", "handout/smart.md"),
    "window": Part("7.8", "Sliding-window attention and attention sinks", "handout/window.md"),
    "ensemble": Part("7.9", "Ensembles", "handout/ensemble.md"),
    "pretraining": Part("8", "Pretraining", "handout/pretraining.md"),
    "research": Part("9", "Research architectures", "handout/research.md"),
}
CHAPTERS: dict[str, str] = {"7": "handout/extensions.md"}
# The handout document (`autograder/document.py`): the course's title and policies, these,
# one section per chosen part, the questions, SUBMIT, the points table, the appendix.
HANDOUT_OPENING: tuple[str, ...] = ("handout/overview.md", "handout/setup.md")
HANDOUT_SUBMIT = "handout/submit.md"

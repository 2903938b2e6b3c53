#!/usr/bin/env bash
# One run of a sweep (handout 9) per Slurm array task.  `sweep.py slurm` submits it:
#
#   python sweep.py slurm sweeps/attention_variants.toml --out_dir out/variants \
#       --sbatch_args "--gres=none --cpus-per-task=2"    # the CPU recipe; GPU grids keep gpu:1
#
# which writes out/variants/runs.json, then runs
#   sbatch --array=0-5 --output=<sweep folder>/slurm-%A_%a.out sbatch_sweep.sh <sweep folder>
# so task i trains run i of runs.json through `sweep.py run-one` (skipped when finished,
# resumed when started: resubmitting a preempted sweep continues it).  The job runs in the
# submit folder, where the grid's relative paths (data_dir) hold.  Environment (set by
# sweep.py slurm):
#   PYTHON    the Python that submitted      (default .venv/bin/python)
#   SWEEP_PY  that sweep.py                  (default sweep.py)
#
#SBATCH --job-name=build-gpt2-sweep
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --time=04:00:00
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"
SWEEP_DIR="${1:?usage: sbatch --array=0-N sbatch_sweep.sh SWEEP_DIR}"
TASK="${SLURM_ARRAY_TASK_ID:?not an array task: submit with --array (sweep.py slurm does)}"
echo "[sbatch_sweep] job ${SLURM_ARRAY_JOB_ID:-none}_${TASK} on $(hostname), $(date -u +%FT%TZ)"
"${PYTHON:-.venv/bin/python}" "${SWEEP_PY:-sweep.py}" run-one "${SWEEP_DIR}" "${TASK}"
echo "[sbatch_sweep] $(date -u +%T) done"

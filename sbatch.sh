#!/usr/bin/env bash
# Part 2 on one cluster GPU: the classifier (SST + CFIMDB), paraphrase detection (Quora) and
# sonnet generation, one after the other, writing predictions/ for the submission.
#
#   cd build-gpt2 && sbatch sbatch.sh                       # the defaults below
#   MODEL_ARGS="--model_size gpt2-medium" sbatch sbatch.sh  # any default, by environment
#   TASKS="sonnet" sbatch --time=01:00:00 sbatch.sh         # one task; sbatch flags win
#
# Submit from the repository root after `bash setup.sh` and `python data/prepare.py ...`
# (the job runs in the submit folder, or in $BUILD_GPT2_REPO when set).  Log:
# slurm-<jobid>.out in the submit folder.  Defaults (environment variable: value):
#   PYTHON           .venv/bin/python
#   TASKS            "classifier paraphrase sonnet"
#   MODEL_ARGS       --model_size gpt2          (or --model_path DIR for a local checkpoint)
#   DEVICE_ARGS      --use_gpu                  (CUDA with bf16 autocast)
#   CLASSIFIER_ARGS  --task both --fine-tune-mode full-model --epochs 10 --batch_size 8 --lr 2e-5
#   PARA_ARGS        --epochs 10 --batch_size 8 --lr 1e-5
#   SONNET_ARGS      --epochs 10 --batch_size 8 --lr 1e-5 --temperature 1.2 --top_p 0.9
#   COMMON_ARGS      (empty) appended to every task, e.g. "--data_dir DIR --out_dir DIR"
#
#SBATCH --job-name=build-gpt2
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --time=08:00:00
#SBATCH --output=slurm-%j.out
set -euo pipefail
cd "${BUILD_GPT2_REPO:-${SLURM_SUBMIT_DIR:-.}}"

PYTHON="${PYTHON:-.venv/bin/python}"
TASKS="${TASKS:-classifier paraphrase sonnet}"
MODEL_ARGS="${MODEL_ARGS---model_size gpt2}"
DEVICE_ARGS="${DEVICE_ARGS---use_gpu}"
CLASSIFIER_ARGS="${CLASSIFIER_ARGS---task both --fine-tune-mode full-model --epochs 10 --batch_size 8 --lr 2e-5}"
PARA_ARGS="${PARA_ARGS---epochs 10 --batch_size 8 --lr 1e-5}"
SONNET_ARGS="${SONNET_ARGS---epochs 10 --batch_size 8 --lr 1e-5 --temperature 1.2 --top_p 0.9}"
COMMON_ARGS="${COMMON_ARGS:-}"

echo "[sbatch] job ${SLURM_JOB_ID:-none} on $(hostname) in $(pwd), $(date -u +%FT%TZ)"
echo "[sbatch] tasks: ${TASKS}; model: ${MODEL_ARGS}; device: ${DEVICE_ARGS:-cpu}"
if command -v nvidia-smi >/dev/null && [ -n "${DEVICE_ARGS}" ]; then
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
fi

for task in ${TASKS}; do
    case "${task}" in
        classifier) script=classifier.py; args="${CLASSIFIER_ARGS}" ;;
        paraphrase) script=paraphrase_detection.py; args="${PARA_ARGS}" ;;
        sonnet) script=sonnet_generation.py; args="${SONNET_ARGS}" ;;
        *) echo "[sbatch] unknown task '${task}'; TASKS takes classifier, paraphrase, sonnet" >&2
           exit 2 ;;
    esac
    echo "[sbatch] $(date -u +%T) ${script} ${MODEL_ARGS} ${DEVICE_ARGS} ${args} ${COMMON_ARGS}"
    # Word splitting of the *_ARGS variables is intended: each holds several flags.
    # shellcheck disable=SC2086
    "${PYTHON}" "${script}" ${MODEL_ARGS} ${DEVICE_ARGS} ${args} ${COMMON_ARGS}
done
echo "[sbatch] $(date -u +%T) done"

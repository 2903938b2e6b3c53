#!/usr/bin/env bash
# Pretraining (handout 7) on a Slurm cluster: one or several nodes, data-parallel over every
# GPU.  srun starts one torchrun per node; the torchruns meet through torchrun's c10d
# rendezvous on the first node, and each starts NPROC_PER_NODE ranks of pretrain.py.
#
#   cd build-gpt2 && sbatch sbatch_pretrain.sh                        # 1 node, 1 GPU
#   sbatch --nodes=2 --gres=gpu:4 sbatch_pretrain.sh                  # 2 nodes x 4 GPUs
#   PRETRAIN_ARGS="--data_dir data/tinystories --n_layer 12" sbatch sbatch_pretrain.sh
#
# Submit from the repository root after `bash setup.sh` and `python data/prepare_lm.py ...`
# (the job runs in the submit folder, or in $BUILD_GPT2_REPO when set).  Log:
# slurm-<jobid>.out.  Defaults (environment variable: value):
#   PYTHON          .venv/bin/python
#   NPROC_PER_NODE  the GPUs Slurm gave this node (1 without a GPU)
#   DEVICE_ARGS     --device cuda              ("--device cpu" for a CPU job)
#   PRETRAIN_ARGS   the Tiny Shakespeare GPU recipe (nanoGPT's shakespeare_char)
#   RDZV_PORT       29500 + the job id modulo 1000
#
#SBATCH --job-name=build-gpt2-pretrain
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --time=04:00:00
#SBATCH --output=slurm-%j.out
set -euo pipefail
cd "${BUILD_GPT2_REPO:-${SLURM_SUBMIT_DIR:-.}}"

PYTHON="${PYTHON:-.venv/bin/python}"
GPUS="${SLURM_GPUS_ON_NODE:-${SLURM_GPUS_PER_NODE:-0}}"
GPUS="${GPUS##*:}"  # "a100:4" -> "4"
if [ -z "${GPUS}" ] || [ "${GPUS}" = "0" ]; then GPUS=1; fi
NPROC_PER_NODE="${NPROC_PER_NODE:-${GPUS}}"
DEVICE_ARGS="${DEVICE_ARGS---device cuda}"
PRETRAIN_ARGS="${PRETRAIN_ARGS---data_dir data/shakespeare_char --out_dir out/shakespeare-gpu --n_layer 6 --n_head 6 --n_embd 384 --block_size 256 --batch_size 64 --max_iters 5000 --lr_decay_iters 5000 --dropout 0.2 --eval_interval 250 --eval_iters 200}"
NODES="${SLURM_JOB_NUM_NODES:-1}"
TASKS="${SLURM_NTASKS:-${NODES}}"  # one torchrun per task
HEAD="$(scontrol show hostnames "${SLURM_JOB_NODELIST:-localhost}" 2>/dev/null | head -n 1)"
HEAD="${HEAD:-localhost}"
RDZV_PORT="${RDZV_PORT:-$((29500 + ${SLURM_JOB_ID:-0} % 1000))}"

echo "[sbatch_pretrain] job ${SLURM_JOB_ID:-none}: ${TASKS} torchrun(s) x ${NPROC_PER_NODE}" \
     "rank(s) on ${NODES} node(s), rendezvous ${HEAD}:${RDZV_PORT}, $(date -u +%FT%TZ)"
echo "[sbatch_pretrain] pretrain.py ${DEVICE_ARGS} ${PRETRAIN_ARGS}"
# Word splitting of the *_ARGS variables is intended: each holds several flags.
# shellcheck disable=SC2086
srun --ntasks="${TASKS}" --kill-on-bad-exit=1 \
    "${PYTHON}" -m torch.distributed.run --nnodes="${TASKS}" --nproc_per_node="${NPROC_PER_NODE}" \
    --rdzv_id="${SLURM_JOB_ID:-0}" --rdzv_backend=c10d --rdzv_endpoint="${HEAD}:${RDZV_PORT}" \
    pretrain.py ${DEVICE_ARGS} ${PRETRAIN_ARGS}
echo "[sbatch_pretrain] $(date -u +%T) done"

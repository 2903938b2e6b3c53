#!/usr/bin/env bash
# The GPU figures of the speed issue, in one go, on one CUDA GPU (no network needed):
#   1. pretrain.py at the gpt2-small shape (12 x 768, context 1024, batch 12) in bfloat16,
#      without and with --compile: tokens/s and MFU (bench/mfu.py), beside nanoGPT's own
#      train.py on the same tokens and shape, without and with its --compile;
#   2. the GPU Tiny Shakespeare recipe (nanoGPT's train_shakespeare_char: 6 x 384, context
#      256, batch 64, 5000 steps, dropout 0.2; nanoGPT reaches validation loss about 1.47);
#   3. one SST epoch of classifier.py --fine-tune-mode full-model at GPT-2's shape (random
#      weights: the machine has no hub; the time does not depend on them), against the
#      CS224N handout's 5 to 15 minutes;
#   4. pretrain.py --compare_devices.
# Everything goes to OUT (default out/gpu-bench); OUT/figures.md collects the lines to copy
# into bench/README.md, with the GPU's name.
#
#   bash bench/gpu.sh /path/to/nanoGPT [OUT]      # a checkout of karpathy/nanoGPT
#   STEPS=100 bash bench/gpu.sh ...               # steps of the gpt2-small runs (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
command -v "$PY" > /dev/null || { echo "bench/gpu.sh: no Python at $PY (bash setup.sh first)" >&2; exit 2; }
PY="$(cd "$(dirname "$(command -v "$PY")")" && pwd)/$(basename "$PY")"  # absolute, links kept
NANO="$(cd "${1:?usage: bash bench/gpu.sh NANOGPT_DIR [OUT_DIR]}" && pwd)"
OUT="${2:-out/gpu-bench}"
DATA="${BUILD_GPT2_DATA:-../shared/data}"
STEPS="${STEPS:-60}"
[ -f "$NANO/train.py" ] && [ -f "$NANO/model.py" ] || {
    echo "bench/gpu.sh: $NANO holds no nanoGPT train.py and model.py" >&2; exit 2; }
"$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else
    "bench/gpu.sh: needs a CUDA GPU (torch.cuda.is_available() is False)")'
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
FIGURES="$OUT/figures.md"
GPU="$("$PY" -c 'import torch; print(torch.cuda.get_device_name(0))')"
echo "# $GPU, $(date -u +%F), torch $("$PY" -c 'import torch; print(torch.__version__)')" > "$FIGURES"
note() { echo "$*" | tee -a "$FIGURES"; }

[ -f "$OUT/wiki/meta.json" ] || "$PY" data/prepare_lm.py --input "$DATA/wikitext-2/train.txt" \
    --val_input "$DATA/wikitext-2/valid.txt" --tokenizer gpt2 --out_dir "$OUT/wiki"
[ -f "$OUT/chars/meta.json" ] || "$PY" data/prepare_lm.py \
    --input "$DATA/tinyshakespeare/input.txt" --tokenizer bytes --out_dir "$OUT/chars"

# 1. gpt2-small, ours and nanoGPT's, the same shape, tokens and schedule
SMALL=(--n_layer 12 --n_head 12 --n_embd 768 --block_size 1024 --batch_size 12)
note "## gpt2-small shape, bfloat16, batch 12 x 1024, $STEPS steps"
for compile in False True; do
    "$PY" pretrain.py --data_dir "$OUT/wiki" --out_dir "$OUT/small-compile-$compile" \
        "${SMALL[@]}" --device cuda --dtype bfloat16 --compile "$compile" \
        --max_iters "$STEPS" --warmup_iters 10 --learning_rate 6e-4 --min_lr 6e-5 \
        --eval_interval "$STEPS" --eval_iters 5 --log_interval 5 --num_samples 0
    note "ours, --compile $compile: $("$PY" bench/mfu.py "$OUT/small-compile-$compile")"
done
mkdir -p "$NANO/data/kit_wiki"
ln -sf "$OUT/wiki/train.bin" "$NANO/data/kit_wiki/train.bin"
ln -sf "$OUT/wiki/val.bin" "$NANO/data/kit_wiki/val.bin"
for compile in False True; do
    (cd "$NANO" && "$PY" train.py --dataset=kit_wiki --out_dir="$OUT/nano-$compile" \
        --n_layer=12 --n_head=12 --n_embd=768 --block_size=1024 --batch_size=12 \
        --gradient_accumulation_steps=1 --max_iters="$STEPS" --lr_decay_iters="$STEPS" \
        --warmup_iters=10 --eval_interval=100000 --eval_iters=5 --log_interval=5 \
        --always_save_checkpoint=False --dtype=bfloat16 --compile="$compile" --dropout=0.0 \
        --bias=True) > "$OUT/nano-$compile.log" 2>&1
    note "nanoGPT, --compile=$compile: $("$PY" bench/mfu.py --nanogpt_log "$OUT/nano-$compile.log" \
        --tokens_per_iter 12288 --n_layer 12 --n_head 12 --n_embd 768 --block_size 1024 \
        --vocab_size 50304)"
done

# 2. the GPU Tiny Shakespeare recipe
"$PY" pretrain.py --data_dir "$OUT/chars" --out_dir "$OUT/shakespeare" --device cuda \
    --dtype bfloat16 --compile True --n_layer 6 --n_head 6 --n_embd 384 --block_size 256 \
    --batch_size 64 --max_iters 5000 --lr_decay_iters 5000 --learning_rate 1e-3 \
    --min_lr 1e-4 --beta2 0.99 --warmup_iters 100 --dropout 0.2 --eval_interval 250 \
    --eval_iters 200 --num_samples 1
note "## Tiny Shakespeare, GPU recipe, 5000 steps: $("$PY" - "$OUT/shakespeare" <<'PYEOF'
import sys
from training.metrics import read_metrics
rows = [r for r in read_metrics(f"{sys.argv[1]}/metrics.jsonl") if r.get("val_loss") is not None]
print(f"best validation loss {min(r['val_loss'] for r in rows):.4f} (nanoGPT: about 1.47), "
      f"{rows[-1]['time_s'] / 60:.1f} min")
PYEOF
)"

# 3. one SST epoch at GPT-2's shape
[ -f "$OUT/tasks/ids-sst-train.csv" ] || "$PY" data/prepare.py --from "$DATA/cs224n" \
    --tokenizer "$DATA/gpt2-tokenizer" --out "$OUT/tasks"
start=$(date +%s)
"$PY" classifier.py --task sst --fine-tune-mode full-model --epochs 1 --use_gpu --random_init \
    --data_dir "$OUT/tasks" --tokenizer "$OUT/tasks/gpt2-tokenizer" \
    --out_dir "$OUT/sst-predictions" --checkpoint_dir "$OUT/sst" \
    | tee "$OUT/sst.log"
note "## SST, one full-model epoch at GPT-2's shape (random weights), bf16: $(( ($(date +%s) - start) / 60 )) min $(( ($(date +%s) - start) % 60 )) s, the handout says 5 to 15 minutes"

# 4. the CPU against the GPU
note "## pretrain.py --compare_devices (Tiny Shakespeare CPU recipe)"
"$PY" pretrain.py --data_dir "$OUT/chars" --out_dir "$OUT/compare" --device cuda \
    --compare_devices | tee -a "$FIGURES"
echo "[gpu] figures: $FIGURES"

"""Ensembles of fine-tuned task checkpoints: the mean of their class probabilities.

    python ensemble.py --task sst out/a/sst-classifier.pt out/b/sst-classifier.pt
    python ensemble.py --task para out/a/paraphrase.pt out/b/paraphrase.pt out/c/paraphrase.pt

Each checkpoint is a task script's best checkpoint (`classifier.py` writes
`{sst,cfimdb}-classifier.pt`, `paraphrase_detection.py` writes `paraphrase.pt`, both in
`--checkpoint_dir`).  Each is rebuilt with the flags it was trained with (the weights it
started from, the fine-tune mode, LoRA), its class probabilities on dev and test are
averaged with the others' (`ensemble_probabilities` in `training/finetune.py`,
handout 7.9), and the argmax of the mean is written to the graded prediction files,
`<out_dir>/{task}-dev-output.csv` and `-test-`.  Each member's dev accuracy and the
ensemble's are printed.

The task's own script does the work in its ensemble mode (`--ensemble CKPT ...`, which
trains nothing), since only it builds its model; this command runs it with the flags
below and returns its exit status.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from training.args import DATA_DIR, POSITIVE_INT, REPO
from training.helpformat import HelpFormatter

HERE = Path(__file__).resolve().parent
SCRIPTS = {"sst": ("classifier.py", "--task", "sst"),
           "cfimdb": ("classifier.py", "--task", "cfimdb"),
           "para": ("paraphrase_detection.py",)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--task", required=True, choices=list(SCRIPTS))
    parser.add_argument("checkpoints", nargs="+", metavar="CKPT",
                        help="fine-tuned checkpoints of the task")
    parser.add_argument("--data_dir", default=DATA_DIR, help="prepared data folder")
    parser.add_argument("--tokenizer", default=str(Path(DATA_DIR) / "gpt2-tokenizer"),
                        help="Hugging Face tokenizer name, or a folder with vocab.json and "
                             "merges.txt")
    parser.add_argument("--out_dir", default=str(Path(REPO) / "predictions"),
                        help="where the prediction files are written")
    parser.add_argument("--max_length", type=POSITIVE_INT, default=None,
                        help="tokens per example (default: the task script's)")
    parser.add_argument("--eval_batch_size", type=POSITIVE_INT, default=32)
    parser.add_argument("--use_gpu", action="store_true", help="CUDA with bf16 autocast")
    args = parser.parse_args(argv)
    missing = [path for path in args.checkpoints if not Path(path).is_file()]
    if missing:
        parser.error(f"checkpoint(s) not found: {', '.join(missing)}")
    return args


def command(args: argparse.Namespace) -> list[str]:
    """The task script's command line in ensemble mode."""
    script, *task = SCRIPTS[args.task]
    length = ["--max_length", str(args.max_length)] if args.max_length else []
    return [sys.executable, str(HERE / script), *task, "--data_dir", args.data_dir,
            "--tokenizer", args.tokenizer, "--out_dir", args.out_dir,
            "--eval_batch_size", str(args.eval_batch_size), *length,
            *(["--use_gpu"] if args.use_gpu else []), "--ensemble", *args.checkpoints]


def main(argv: list[str] | None = None) -> int:
    return subprocess.run(command(parse_args(argv))).returncode


if __name__ == "__main__":
    sys.exit(main())

"""Run a grid of pretrain.py or task script flags by seeds, then compare the runs (handout 9).

    python sweep.py run sweeps/attention_variants.toml --out_dir out/variants
    python sweep.py run sweeps/sst_lr.toml --out_dir out/sst_lr       # classifier.py runs
    python sweep.py run sweeps/attention_variants.toml --out_dir out/quick --set max_iters=50
    python sweep.py slurm sweeps/attention_variants.toml --out_dir out/variants \\
        --sbatch_args "--gres=none --cpus-per-task=2"     # one array task per run
    python sweep.py aggregate out/variants                  # summary.csv and the figures
    python sweep.py aggregate out/softmax out/attn_bias --out_dir out/compared

``run`` expands the grid file (``training.sweeps``: TOML, checked against pretrain.py's
parser; ``--set key=value``, repeatable, replaces a [base] value or a [grid] list for
every run), writes ``DIR/runs.json`` and trains the runs one after another, each as
``python pretrain.py <flags> --out_dir DIR/<run name>``.  A run whose checkpoint is at
``max_iters`` is skipped and one with an earlier checkpoint continues (``--init_from
resume``), so a killed sweep is resumed by running the same command again.  ``slurm``
writes the same runs.json and submits ``sbatch_sweep.sh`` as one job array, one task per
unfinished run; each task runs ``sweep.py run-one DIR INDEX``, the code path of ``run``.
``aggregate`` (``analysis.sweep_summary``) reads sweep folders or any pretrain.py out
folders.

A grid with ``script = "classifier.py"`` or ``"paraphrase_detection.py"`` runs that script
the same way (``python classifier.py <flags> --out_dir DIR/<run> --checkpoint_dir
DIR/<run>``); a run is finished once its script has exited 0, and ``aggregate DIR`` then
writes ``DIR/summary.csv``, the best dev accuracy of every run and task
(``training.sweeps.task_summary``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from training.args import POSITIVE_INT
from training.helpformat import HelpFormatter
from training.sweeps import (
    GRID_COPY,
    PRETRAIN,
    GridError,
    expand,
    grid_script,
    mark_finished,
    parse_setting,
    read_grid,
    read_runs,
    run_state,
    script_argv,
    task_summary,
    write_runs,
)

HERE = Path(__file__).resolve().parent
SBATCH_SCRIPT = HERE / "sbatch_sweep.sh"


def prepare(args: argparse.Namespace) -> dict[str, dict]:
    """Check the grid, write out_dir/runs.json and a copy of the grid; {name: flags}."""
    overrides = dict(args.set)
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    runs = expand(read_grid(args.grid, overrides))
    write_runs(args.out_dir, runs)
    copy = Path(args.out_dir) / GRID_COPY
    if not copy.exists() or not copy.samefile(args.grid):
        shutil.copyfile(args.grid, copy)
    print(f"[sweep] {len(runs)} runs in {args.out_dir}/runs.json")
    return runs


def run_one(sweep_dir: str | Path, index: int) -> bool:
    """Train run number ``index`` of the sweep folder unless it has finished; True when it
    has finished (now or before)."""
    runs = read_runs(sweep_dir)
    if not 0 <= index < len(runs):
        raise GridError(f"{sweep_dir}: run index {index} is not in 0 .. {len(runs) - 1}")
    name, flags = list(runs.items())[index]
    run_dir = Path(sweep_dir) / name
    script = grid_script(sweep_dir)
    state = run_state(run_dir, flags, script)
    if state == "finished":
        print(f"[sweep] {index + 1}/{len(runs)} {name}: finished, skipped")
        return True
    print(f"[sweep] {index + 1}/{len(runs)} {name}: {'resumed' if state == 'started' else 'new'}",
          flush=True)
    command = [sys.executable, str(HERE / script), *script_argv(script, run_dir, flags, state)]
    returncode = subprocess.run(command).returncode
    if returncode:
        print(f"[sweep] {name}: {script} exited with {returncode}: {shlex.join(command)}")
    elif script != PRETRAIN:
        mark_finished(run_dir, command)
    return returncode == 0


def array_spec(indices: list[int], max_parallel: int | None) -> str:
    """Slurm's --array value: [0, 1, 2, 5] -> "0-2,5" (with "%K" to run at most K at once)."""
    parts, start = [], 0
    for position in range(1, len(indices) + 1):
        if position == len(indices) or indices[position] != indices[position - 1] + 1:
            first, last = indices[start], indices[position - 1]
            parts.append(str(first) if first == last else f"{first}-{last}")
            start = position
    return ",".join(parts) + (f"%{max_parallel}" if max_parallel else "")


def submit(args: argparse.Namespace, runs: dict[str, dict]) -> int:
    """sbatch one array over the unfinished runs; the exit status of sbatch."""
    sweep_dir = Path(args.out_dir).resolve()
    script = grid_script(sweep_dir)
    todo = [index for index, (name, flags) in enumerate(runs.items())
            if run_state(sweep_dir / name, flags, script) != "finished"]
    if not todo:
        print("[sweep] every run has finished; nothing to submit")
        return 0
    if shutil.which("sbatch") is None:
        raise FileNotFoundError("sbatch not found: submit from a Slurm login node, or train "
                                "here with `sweep.py run`")
    command = ["sbatch", "--parsable", f"--array={array_spec(todo, args.max_parallel)}",
               f"--output={sweep_dir}/slurm-%A_%a.out", *shlex.split(args.sbatch_args),
               *(["--wait"] if args.wait else []), str(SBATCH_SCRIPT), str(sweep_dir)]
    env = {**os.environ, "PYTHON": sys.executable, "SWEEP_PY": str(Path(__file__).resolve())}
    print(f"[sweep] {shlex.join(command)}", flush=True)
    result = subprocess.run(command, env=env)
    return result.returncode


def command_run(args: argparse.Namespace) -> int:
    runs = prepare(args)
    done = [run_one(args.out_dir, index) for index in range(len(runs))]
    failed = [name for name, ok in zip(runs, done, strict=True) if not ok]
    if failed:
        print(f"[sweep] {len(failed)} run(s) failed: {', '.join(failed)}")
    return 1 if failed else 0


def command_slurm(args: argparse.Namespace) -> int:
    return submit(args, prepare(args))


def command_run_one(args: argparse.Namespace) -> int:
    return 0 if run_one(args.sweep_dir, args.index) else 1


def command_aggregate(args: argparse.Namespace) -> int:
    tasks = [path for path in args.paths if (Path(path) / GRID_COPY).is_file()
             and grid_script(path) != PRETRAIN]
    if tasks:
        if len(args.paths) > 1:
            raise GridError(f"{tasks[0]} is a sweep of {grid_script(tasks[0])}: aggregate it "
                            "on its own")
        print(f"[sweep] {task_summary(tasks[0], args.out_dir)}")
        return 0
    # the summary's imports (the model, matplotlib) would slow every array task's start
    from analysis.sweep_summary import aggregate

    ratio = {} if args.spike_ratio is None else {"spike_ratio": args.spike_ratio}
    aggregate(args.paths, args.out_dir, args.windows, args.seed, args.batch_size,
              args.data_dir, args.device, **ratio)
    return 0


def setting(text: str) -> tuple[str, object]:
    """argparse type of ``--set``: `training.sweeps.parse_setting`."""
    try:
        return parse_setting(text)
    except GridError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=HelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, handler, text in (
            ("run", command_run, "train every run here, one after another"),
            ("slurm", command_slurm, "submit one Slurm job array, one task per run")):
        command = commands.add_parser(name, help=text, formatter_class=HelpFormatter)
        command.set_defaults(handler=handler)
        command.add_argument("grid", help="a grid file (TOML; see sweeps/)")
        command.add_argument("--out_dir", required=True, help="the sweep folder")
        command.add_argument("--data_dir", help="replaces the grid's data_dir")
        command.add_argument("--set", type=setting, action="append", default=[],
                             metavar="KEY=VALUE",
                             help="replace a grid value for every run, e.g. max_iters=50 "
                                  "(repeatable; a [grid] key then takes this one value)")
    slurm = commands.choices["slurm"]
    slurm.add_argument("--sbatch_args", default="",
                       help='more sbatch options, e.g. "--gres=gpu:1 --time=02:00:00"')
    slurm.add_argument("--max_parallel", type=POSITIVE_INT, help="array tasks running at once")
    slurm.add_argument("--wait", action="store_true", help="return when the array has ended")
    one = commands.add_parser("run-one", help="train run INDEX of a sweep folder (array task)",
                                formatter_class=HelpFormatter)
    one.set_defaults(handler=command_run_one)
    one.add_argument("sweep_dir")
    one.add_argument("index", type=int)
    summary = commands.add_parser("aggregate", help="summary.csv and figures of finished runs",
                                  formatter_class=HelpFormatter)
    summary.set_defaults(handler=command_aggregate)
    summary.add_argument("paths", nargs="+", help="sweep folders or pretrain.py out folders")
    summary.add_argument("--out_dir", help="default: the sweep folder, when there is one")
    summary.add_argument("--data_dir", help="validation data (default: each run's data_dir)")
    summary.add_argument("--windows", type=int, default=64, help="validation windows N")
    summary.add_argument("--seed", type=int, default=0, help="seed of the windows")
    summary.add_argument("--batch_size", type=int, default=8)
    summary.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    summary.add_argument("--spike_ratio", type=float,
                         help="a loss this fraction above the running minimum is a spike "
                              "(default: analysis.sweep_summary.SPIKE_RATIO, 0.1)")
    args = parser.parse_args(argv)
    if args.command == "aggregate" and args.out_dir is None:
        if len(args.paths) > 1:
            parser.error("aggregate: pass --out_dir for several folders")
        args.out_dir = args.paths[0]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return args.handler(args)
    except (GridError, FileNotFoundError, ValueError) as error:
        raise SystemExit(f"sweep.py: {error}") from None


if __name__ == "__main__":
    sys.exit(main())

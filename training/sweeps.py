"""Sweeps: a grid of ``pretrain.py`` (or task script) flags by seeds, expanded into named
runs (handout 9).

A grid file is TOML::

    script = "pretrain.py"                # or "classifier.py", "paraphrase_detection.py"
    seeds = [1337, 1338]                  # every combination runs once per seed
    [base]                                # pretrain.py flags of every run
    max_iters = 2000
    [grid]                                # flag -> the values to sweep (cartesian product)
    attention_variant = ["softmax", "attn_bias"]

Keys are ``pretrain.py``'s flag names without the dashes; values are TOML scalars (a bool
becomes ``True``/``False``, as ``--compile=False``).  A grid is checked when it is read,
against pretrain.py's own parser (``training.pretrain_flags``, shortened names refused):
every key and value alone, then every expanded run as a whole (``--n_embd`` divisible by
``--n_head``, ...); an error names the file, the table and the key, or the run.  The sweep
sets ``seed``, ``out_dir`` and ``--init_from resume`` itself, so a grid may not.

A run's name lists its grid values in file order, then the seed, Hydra's way:
``attention_variant=attn_bias,seed=1337`` (characters other than letters, digits and
``_.+-=,`` become ``_``).  A sweep folder holds ``runs.json`` ({name: flags}, in array
order), a copy of the grid (``grid.toml``) and one out folder per run, named by the run.

A grid of a task script (``TASK_SCRIPTS``) is checked for its keys only, against the flags
its ``--help`` lists (the training core imports no task); the script checks the values
when each run starts, and refuses a bad one naming it.  A flag that is a switch of the
script (``--use_gpu``) is given as ``true`` (passed bare) or ``false`` (left out).  The
sweep sets ``seed``, ``out_dir`` and ``checkpoint_dir`` (both the run's folder); a task
run is finished when the sweep has written its ``finished.json`` (the script exited 0),
and an unfinished one starts again.  ``task_summary`` tables the best dev accuracy of
every run and task.
"""

from __future__ import annotations

import argparse
import csv
import functools
import itertools
import json
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from training.checkpoint import load_checkpoint
from training.metrics import read_metrics
from training.pretrain_flags import build_parser, check_args

Scalar = str | int | float | bool
TABLES = ("base", "grid")
SET_BY_THE_SWEEP = {"seed": "list the seeds in the top-level `seeds`",
                    "out_dir": "each run's out folder is <sweep folder>/<run name>"}
RUNS_FILE = "runs.json"
GRID_COPY = "grid.toml"  # the grid a sweep folder was made from
PRETRAIN = "pretrain.py"
TASK_SCRIPTS = ("classifier.py", "paraphrase_detection.py")
TASK_SET_BY_THE_SWEEP = {**SET_BY_THE_SWEEP,
                         "checkpoint_dir": "each run's checkpoints and metrics go to "
                                           "<sweep folder>/<run name>"}
FINISHED = "finished.json"  # in a task run's folder once its script exited 0
REPO = Path(__file__).resolve().parents[1]


class GridError(ValueError):
    """A grid file, or a sweep folder, that cannot run; the message names file and key."""


@dataclass
class Grid:
    """A checked grid: ``base`` {flag: value}, ``grid`` {flag: [values]}, ``seeds``."""
    path: Path
    base: dict[str, Scalar]
    grid: dict[str, list[Scalar]]
    seeds: list[int]
    script: str = PRETRAIN


def _parser() -> argparse.ArgumentParser:
    """pretrain.py's parser, raising GridError instead of exiting."""
    parser = build_parser(allow_abbrev=False)

    def error(message: str):
        raise GridError(message)
    parser.error = error
    return parser


def parse_flags(flags: dict[str, Scalar]) -> argparse.Namespace:
    """pretrain.py's arguments for {flag: value}, checked as pretrain.py checks them (less
    the device: a sweep may be submitted from a machine without the GPU)."""
    parser = _parser()
    args = parser.parse_args(to_argv(flags))
    check_args(parser, args)
    return args


def to_argv(flags: dict[str, Scalar], bare_switches: bool = False) -> list[str]:
    """{"n_layer": 2, "qk_norm": True} -> ["--n_layer", "2", "--qk_norm", "True"]; with
    ``bare_switches`` (a task script's store_true flags) True -> ["--qk_norm"], False -> []."""
    if bare_switches:
        return [text for key, value in flags.items() if value is not False
                for text in ((f"--{key}",) if value is True else (f"--{key}", str(value)))]
    return [text for key, value in flags.items() for text in (f"--{key}", str(value))]


@functools.cache
def script_flags(script: str) -> frozenset[str]:
    """The flags (without dashes) that a task script's ``--help`` lists."""
    result = subprocess.run([sys.executable, str(REPO / script), "--help"],
                            capture_output=True, text=True, timeout=120)
    if result.returncode:
        raise GridError(f"python {script} --help failed: {result.stderr.strip()[-500:]}")
    return frozenset(re.findall(r"(?<![\w-])--([A-Za-z][\w-]*)", result.stdout)) - {"help"}


def _check_task_key(script: str, path: Path, where: str, key: str, value: object) -> None:
    if isinstance(value, (list, dict)) or not isinstance(value, Scalar):
        raise GridError(f"{path}: {where} {key} = {value!r}: want a string, number or bool")
    if key not in script_flags(script):
        raise GridError(f"{path}: {where} {key}: {script} has no flag --{key} (see python "
                        f"{script} --help)")


def _check_value(path: Path, where: str, key: str, value: object) -> None:
    if isinstance(value, (list, dict)) or not isinstance(value, Scalar):
        raise GridError(f"{path}: {where} {key} = {value!r}: want a string, number or bool")
    try:
        _parser().parse_args(to_argv({key: value}))
    except GridError as error:
        raise GridError(f"{path}: {where} {key}: {error}") from None


def parse_setting(text: str) -> tuple[str, Scalar]:
    """``key=value`` (``sweep.py run --set``) -> (key, value): the value read as a TOML
    scalar (``max_iters=50`` -> 50, ``compile=false`` -> False), else kept as a string
    (``device=cpu``).  Raises GridError for text without ``=`` or an empty key."""
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise GridError(f"--set {text!r}: want key=value, e.g. max_iters=50")
    try:
        parsed = tomllib.loads(f"value = {value}")["value"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.strip(), parsed


def read_grid(path: str | Path, overrides: dict[str, Scalar] | None = None) -> Grid:
    """Read and check the grid file at ``path``; ``overrides`` (e.g. {"data_dir": ...} or
    sweep.py's ``--set``) replace or add ``[base]`` flags, and replace a ``[grid]`` list by
    their one value.  Raises GridError naming the file and key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GridError(f"grid file {path} not found") from None
    except tomllib.TOMLDecodeError as error:
        raise GridError(f"{path}: not TOML: {error}") from None
    unknown = sorted(set(data) - {"script", "seeds", *TABLES})
    if unknown:
        raise GridError(f"{path}: unknown top-level keys {unknown}; a grid has `script`, "
                        "`seeds`, [base] and [grid]")
    script = data.get("script", PRETRAIN)
    if script not in (PRETRAIN, *TASK_SCRIPTS):
        raise GridError(f"{path}: script = {script!r}: choose one of "
                        f"{[PRETRAIN, *TASK_SCRIPTS]}")
    pretrain = script == PRETRAIN
    set_by_the_sweep = SET_BY_THE_SWEEP if pretrain else TASK_SET_BY_THE_SWEEP
    check = _check_value if pretrain else functools.partial(_check_task_key, script)
    seeds = data.get("seeds", [])
    if not (isinstance(seeds, list) and seeds
            and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise GridError(f"{path}: seeds = {seeds!r}: want a non-empty list of integers")
    if len(set(seeds)) < len(seeds):
        raise GridError(f"{path}: seeds = {seeds}: a seed is repeated")
    base, grid = ({**data.get(name, {})} for name in TABLES)
    for key in overrides or {}:
        grid.pop(key, None)
    base.update(overrides or {})
    for key in (*base, *grid):
        if key in set_by_the_sweep:
            raise GridError(f"{path}: {key} is set by the sweep: {set_by_the_sweep[key]}")
    if "resume" in (base.get("init_from"), *grid.get("init_from", [])):
        raise GridError(f"{path}: init_from = \"resume\": the sweep resumes a started run "
                        "itself; leave it out")
    both = sorted(set(base) & set(grid))
    if both:
        raise GridError(f"{path}: {both} in both [base] and [grid]")
    for key, value in base.items():
        check(path, "[base]", key, value)
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise GridError(f"{path}: [grid] {key} = {values!r}: want a non-empty list")
        if len(set(map(str, values))) < len(values):
            raise GridError(f"{path}: [grid] {key} = {values}: a value is repeated")
        for value in values:
            check(path, "[grid]", key, value)
    checked = Grid(path, base, grid, seeds, script)
    for name, flags in expand(checked).items() if pretrain else ():
        try:
            parse_flags(flags)
        except GridError as error:
            raise GridError(f"{path}: run {name}: {error}") from None
    return checked


def run_name(values: dict[str, Scalar]) -> str:
    """``{"attention_variant": "vbias", "seed": 0}`` -> ``"attention_variant=vbias,seed=0"``."""
    text = ",".join(f"{key}={value}" for key, value in values.items())
    return re.sub(r"[^\w.+\-=,]", "_", text)


def expand(grid: Grid) -> dict[str, dict[str, Scalar]]:
    """{run name: flags} for every combination of the grid's values (in file order, the
    last key fastest) and every seed (fastest of all); flags = base, grid values, seed."""
    runs: dict[str, dict[str, Scalar]] = {}
    for combination in itertools.product(*grid.grid.values()):
        for seed in grid.seeds:
            values = {**dict(zip(grid.grid, combination, strict=True)), "seed": seed}
            name = run_name(values)
            if name in runs:
                raise GridError(f"{grid.path}: two runs are both named {name!r}; make the "
                                "values differ in letters or digits")
            runs[name] = {**grid.base, **values}
    return runs


def write_runs(sweep_dir: str | Path, runs: dict[str, dict[str, Scalar]]) -> Path:
    """Write ``sweep_dir/runs.json``; a folder that already holds a different sweep is
    refused (a resumed sweep must expand to the same runs)."""
    path = Path(sweep_dir) / RUNS_FILE
    if path.exists() and list(read_runs(sweep_dir).items()) != list(runs.items()):
        raise GridError(f"{path} holds a different sweep than this grid; pass a new "
                        "--out_dir, or the grid that made it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(runs, indent=1) + "\n", encoding="utf-8")
    return path


def read_runs(sweep_dir: str | Path) -> dict[str, dict[str, Scalar]]:
    """{run name: flags} of a sweep folder, in array order."""
    path = Path(sweep_dir) / RUNS_FILE
    if not path.is_file():
        raise GridError(f"{path} not found: is {sweep_dir} a sweep folder (sweep.py run)?")
    return json.loads(path.read_text(encoding="utf-8"))


def grid_script(sweep_dir: str | Path) -> str:
    """The script of a sweep folder's grid (its ``grid.toml``)."""
    path = Path(sweep_dir) / GRID_COPY
    if not path.is_file():
        raise GridError(f"{path} not found: is {sweep_dir} a sweep folder (sweep.py run)?")
    return tomllib.loads(path.read_text(encoding="utf-8")).get("script", PRETRAIN)


def run_state(run_dir: str | Path, flags: dict[str, Scalar], script: str = PRETRAIN) -> str:
    """``"finished"`` (pretrain: ``ckpt.pt`` at ``max_iters``; a task: ``finished.json``),
    ``"started"`` (pretrain: an earlier checkpoint: resume it) or ``"new"``."""
    if script != PRETRAIN:
        return "finished" if (Path(run_dir) / FINISHED).is_file() else "new"
    path = Path(run_dir) / "ckpt.pt"
    if not path.is_file():
        return "new"
    return "finished" if load_checkpoint(path)["iter_num"] >= parse_flags(flags).max_iters else "started"


def pretrain_argv(run_dir: str | Path, flags: dict[str, Scalar], state: str) -> list[str]:
    """pretrain.py's command line for one run: its flags, its out folder, and
    ``--init_from resume`` when it has started."""
    resume = ["--init_from", "resume"] if state == "started" else []
    return [*to_argv(flags), "--out_dir", str(run_dir), *resume]


def script_argv(script: str, run_dir: str | Path, flags: dict[str, Scalar],
                state: str) -> list[str]:
    """The run's command line after the script: pretrain.py's (`pretrain_argv`), or a task
    script's flags with its out and checkpoint folders both the run's folder."""
    if script == PRETRAIN:
        return pretrain_argv(run_dir, flags, state)
    return [*to_argv(flags, bare_switches=True), "--out_dir", str(run_dir),
            "--checkpoint_dir", str(run_dir)]


def mark_finished(run_dir: str | Path, command: list[str]) -> None:
    """A task run's ``finished.json``: the command that finished."""
    (Path(run_dir) / FINISHED).write_text(json.dumps({"command": command}) + "\n",
                                          encoding="utf-8")


def task_summary(sweep_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """``summary.csv`` of a task sweep: one row per run and task (each
    ``<task>-metrics.jsonl`` of the run's folder): ``run``, the run's flags (the grid's and
    the seed, as given), ``evaluated_task`` (the log's task), ``best_dev_acc`` with the
    other dev metrics (``dev_f1``, ...) and the ``epoch`` of that evaluation, and
    ``evaluations``, how many the log holds.  Unfinished runs are listed with empty
    metrics.  Raises GridError when a flag has the name of one of these columns."""
    sweep_dir = Path(sweep_dir)
    runs = read_runs(sweep_dir)
    keys = list(dict.fromkeys(key for flags in runs.values() for key in flags))
    rows, metrics = [], {}  # metrics: the dev metrics beside dev_acc, in log order
    for name, flags in runs.items():
        logs = sorted((sweep_dir / name).glob("*-metrics.jsonl"))
        finished = (sweep_dir / name / FINISHED).is_file()
        for log in logs if finished else []:
            evaluated = [row for row in read_metrics(log) if row.get("dev_acc") is not None]
            best = max(evaluated, key=lambda row: row["dev_acc"], default={})
            others = {key: value for key, value in best.items() if key.startswith("dev_")
                      and key != "dev_acc"}
            metrics.update(dict.fromkeys(others))
            rows.append({"run": name, **flags,
                         "evaluated_task": log.name.removesuffix("-metrics.jsonl"),
                         "best_dev_acc": best.get("dev_acc"), **others,
                         "epoch": evaluated.index(best) + 1 if best else None,
                         "evaluations": len(evaluated)})
        if not finished:
            rows.append({"run": name, **flags})
    header = ["run", *keys, "evaluated_task", "best_dev_acc", *metrics, "epoch", "evaluations"]
    clashes = sorted({column for column in header if header.count(column) > 1})
    if clashes:
        raise GridError(f"{sweep_dir}: the flags {clashes} have the names of summary.csv's "
                        "own columns")
    path = Path(out_dir or sweep_dir) / "summary.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        writer.writerows(rows)
    return path

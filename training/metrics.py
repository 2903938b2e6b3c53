"""The run's metrics log, one JSON object per logged step (``out_dir/metrics.jsonl``).

Every row has the keys of ``KEYS``; a value not measured at that step is ``null``
(``val_loss``, ``perplexity``, ``bits_per_byte`` between evaluations; ``bits_per_byte``
when the data has no byte count).  ``train_loss`` is the mean training loss over the
optimizer steps since the previous row.  A loss made of parts adds one ``train_<part>``
key per part after these (``train_cross_entropy``, ``train_z_loss``, ...), and a row of an
evaluation adds what the evaluation measured beyond ``val_loss`` and ``bits_per_byte``
(a task's ``dev_acc``, ``dev_f1``, ...).  The log is the source of truth: plots
(``training.plots``) and sweeps read it afterwards, and Weights & Biases, when asked for,
receives the same rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

KEYS = ("iter", "tokens", "lr", "train_loss", "val_loss", "perplexity", "bits_per_byte",
        "tokens_per_s", "grad_norm", "time_s")


class MetricsLog:
    """Appends rows to ``path``.  ``keep_through=k`` (a resumed run) first drops the rows
    after step ``k``, which the stopped run logged after its last checkpoint."""

    def __init__(self, path: str | Path, keep_through: int | None = None, wandb_run=None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = read_metrics(self.path) if keep_through is not None and self.path.exists() else []
        with open(self.path, "w", encoding="utf-8") as f:
            for row in rows:
                if row["iter"] <= keep_through:
                    f.write(json.dumps(row) + "\n")
        self.wandb_run = wandb_run

    def write(self, row: dict[str, Any]) -> None:
        """Append one row: the keys of ``KEYS``, then its other keys (``train_<part>``, an
        evaluation's metrics) in the row's order."""
        extra = [key for key in row if key not in KEYS]
        if set(KEYS) - set(row):
            raise ValueError(f"metrics row keys {sorted(row)}: need {list(KEYS)}")
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({key: row[key] for key in (*KEYS, *extra)}) + "\n")
        if self.wandb_run is not None:
            self.wandb_run.log({k: v for k, v in row.items() if v is not None and k != "iter"},
                               step=row["iter"])


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a metrics log; exits naming the file and line of a row that is not JSON."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise SystemExit(f"{path}:{number}: not a JSON object ({error})") from None
    return rows

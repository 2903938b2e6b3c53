"""Reference outputs: the same producers run on the reference solution (staff only).

`build_reference(out_dir)` grades the staff tree's own gradable files in the sandbox and
writes `visible.npz` (shipped with the handout) and `hidden.npz`, byte-reproducibly.  It
refuses to write anything if a single case fails on the reference solution.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from autograder import npzio, sandbox
from autograder.case import all_cases
from autograder.grade import Layout, stage_submission
from autograder.parts import assignment


def build_reference(out_dir: Path, layout: Layout | None = None) -> dict[str, Path]:
    """Write visible.npz and hidden.npz into `out_dir`; returns name -> path."""
    layout = layout or Layout.detect()
    cases = all_cases(include_hidden=True)
    files = {rel: (layout.root / rel).read_bytes() for rel in assignment(layout.root)["gradable"]}
    run_dir = Path(tempfile.mkdtemp(prefix="gpt2-reference-"))
    try:
        stage, trusted = stage_submission(layout, files, run_dir)
        runs, log, _ = sandbox.run_cases(cases, run_dir, stage, trusted,
                                         solutions_required=True)
        arrays = {"visible.npz": {}, "hidden.npz": {}}
        problems = []
        for case in cases:
            run = runs[case.name]
            if run.status != "done" or run.error is not None or run.output is None:
                problems.append(f"{case.name}: {run.status}: {run.error or run.note}")
                continue
            produced = npzio.load(run.output, case.name)
            target = arrays["visible.npz" if case.visible else "hidden.npz"]
            target.update({f"{case.name}/{key}": value for key, value in produced.items()})
        if problems:
            raise RuntimeError("the reference solution fails cases:\n" + "\n".join(problems)
                               + "\n" + log[-2000:])
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, content in arrays.items():
        npzio.save(out_dir / name, content)
        written[name] = out_dir / name
    return written

"""Which parts an assignment holds, and what belongs to each (`autograder.manifest.PARTS`).

A fenced function is named `"<file>:<qualname>"` (e.g. `"optimizer.py:AdamW.step"`); it
belongs to the part whose section is the longest dotted prefix of the section its
docstring cites: "(handout 3.1)" -> "3" -> part "model"; "(handout 7.1)" -> part "sdpa".
The docstring survives the release, so the same answer comes from the staff tree, the
student's handout and the Gradescope bundle's handout.

The release writes the chosen parts to `autograder/assignment.json` in the handout (and
the bundle writes it beside its `autograder/`) with the files a submission carries:
`assignment(root)` reads it back, and a tree without one (the staff repository) has every
part.  Every verb takes the assignment as `--course FILE` (its `[course].parts`) or
`--parts P ...` (`chosen_assignment`): in the staff tree either one chooses the parts (neither:
every part); a released tree (handout, bundle) grades its own parts and refuses others.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from autograder.fences import fenced_functions, function_sections, part_of_section
from autograder.manifest import HANDOUT_FILES, PARTS

ASSIGNMENT = "autograder/assignment.json"


def check_parts(parts: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """`parts` in handout order; ValueError naming an unknown or repeated one, or none."""
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts or len(set(parts)) != len(parts):
        raise ValueError(f"parts {list(parts)}: choose one or more of {list(PARTS)}, each once"
                         + (f" (unknown: {unknown})" if unknown else ""))
    return tuple(name for name in PARTS if name in parts)


@functools.cache
def _sections(path: Path) -> dict[str, str | None]:
    return function_sections(path.read_text(), str(path))


def part_of_function(root: Path, function: str) -> str:
    """The part of fenced function `"<file>:<qualname>"`, read from the tree at `root`."""
    rel, _, qualname = function.partition(":")
    if rel not in HANDOUT_FILES or not rel.endswith(".py"):
        raise ValueError(f"{function}: {rel} is not a Python file of the handout "
                         "(HANDOUT_FILES, autograder/manifest.py)")
    sections = _sections((root / rel).resolve())
    if sections.get(qualname) is None:
        raise ValueError(f"{function}: no such function in {rel}, or its docstring cites no "
                         "'(handout N.M)'")
    return part_of_section(sections[qualname], function)


def assignment(root: Path, parts: tuple[str, ...] | None = None) -> dict[str, list[str]]:
    """{"parts", "gradable" (the files with a fence of those parts: what a submission
    carries and the grader takes), "predictions"}.

    Read from `root/autograder/assignment.json` when `parts` is None and the file exists;
    otherwise computed from the fences of the reference tree at `root` (every part when
    `parts` is None).
    """
    path = root / ASSIGNMENT
    if parts is None and path.is_file():
        try:
            data = json.loads(path.read_text())
            check_parts(data["parts"])
            return {key: list(data[key]) for key in ("parts", "gradable", "predictions")}
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}: {error}") from error
    chosen = check_parts(parts or tuple(PARTS))
    fences = fenced_functions(root)
    gradable = list(dict.fromkeys(function.partition(":")[0]
                                  for function, part in fences.items() if part in chosen))
    predictions = [rel for name in chosen for rel in PARTS[name].predictions]
    return {"parts": list(chosen), "gradable": gradable, "predictions": predictions}


def chosen_assignment(tree: Path, course: str | Path | None = None,
                      parts: list[str] | tuple[str, ...] | None = None
                      ) -> tuple[dict[str, list[str]], str]:
    """(the `assignment` a verb works on, the line that says which parts and why) for the
    flags `--course` (a course file) and `--parts`, at most one of them.

    A tree with `autograder/assignment.json` (a released handout, the bundle's handout) has
    its own parts: a flag asking for others is a ValueError naming both.  The staff tree
    takes the flag's parts, or every part with neither flag.
    """
    from autograder.course import load_course

    if course is not None and parts is not None:
        raise ValueError("pass --course or --parts, not both (the course file names its parts)")
    asked, why = None, ""
    if course is not None:
        asked, why = load_course(course).parts, f"the parts of {course}"
    elif parts is not None:
        asked, why = check_parts(parts), "the parts of --parts"
    if (tree / ASSIGNMENT).is_file():
        own = assignment(tree)
        if asked is not None and asked != tuple(own["parts"]):
            raise ValueError(f"{why} are {list(asked)}, but this tree was released for "
                             f"{own['parts']} ({tree / ASSIGNMENT}): release again with "
                             "those parts, or drop the flag")
        return own, f"assignment: parts {own['parts']} (from {tree / ASSIGNMENT})"
    if asked is None:
        return assignment(tree), (f"assignment: every part {list(PARTS)} (no --course or "
                                  "--parts; pass one to grade an assignment of fewer parts)")
    return assignment(tree, asked), f"assignment: parts {list(asked)} ({why})"


def write_assignment(folder: Path, data: dict[str, list[str]]) -> Path:
    path = folder / ASSIGNMENT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path

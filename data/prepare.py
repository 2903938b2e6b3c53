"""Import the course data into data/ (git-ignored), validated, with the graded splits.

    python data/prepare.py --from ../shared/data/cs224n --tokenizer ../shared/data/gpt2-tokenizer
    python data/prepare.py --from ../shared/data/cs224n --tokenizer ../shared/data/gpt2-tokenizer --staff

The public test files have no labels, so the graded test sets are carved out of labelled
data, deterministically (examples ordered by sha256("<task>:<id>"), so the split depends on
the ids only, not on row order or on the machine):

- SST, CFIMDB: dev is the course dev file; test is as many train examples as dev has;
  train is the rest.
- Quora: only the 20k labelled pairs of quora-dev.csv exist here: 2,000 test, 2,000 dev,
  the rest (about 16k) train.

Every mode writes the same data/ files (the handout gets label-free ``*-test-student.csv``
files); ``--staff`` also writes the hidden labels, header ``id,label``, into
``autograder/hidden/`` (staff only, git-ignored): ``{sst,cfimdb,para}-test-labels.csv``
and the matching ``*-dev-labels.csv``.  Malformed rows are reported (file:line: reason and
a count) and skipped.  Sonnet files get LF line endings; the graded test sonnets are 12 of
sonnets.txt (prompts in data/sonnets_held_out.txt, full text in
``autograder/hidden/sonnets-test-true.txt``), since the public test prompts have no text.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil

import evaluation
from data.loaders import (
    SENTIMENT_TASKS,
    read_paraphrase,
    read_sentiment,
    write_paraphrase,
    write_sentiment,
)

from training.paths import course_data
from training.helpformat import HelpFormatter

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUORA_SOURCE = "quora-dev.csv"
QUORA_DEV, QUORA_TEST = 2000, 2000
SONNET_TEST, PROMPT_LINES = 12, 3  # graded test sonnets, and the lines of each prompt
SONNET_FILES = ("sonnets.txt", "sonnets_held_out_dev.txt", "TRUE_sonnets_held_out_dev.txt",
                "sonnets_held_out.txt")
SOURCE_FILES = (*(f"{stem}-{split}.csv" for stem, _ in SENTIMENT_TASKS.values()
                  for split in ("train", "dev")), QUORA_SOURCE, *SONNET_FILES)


def split_order(task: str, example_id: str) -> str:
    """The deterministic sort key that decides which split an example lands in."""
    return hashlib.sha256(f"{task}:{example_id}".encode()).hexdigest()


def check_source(source: str, tokenizer_dir: str) -> None:
    """Exit with what to pass when the course files or the tokenizer files are missing."""
    missing = [f for f in SOURCE_FILES if not os.path.isfile(os.path.join(source, f))]
    if not os.path.isdir(source) or missing:
        raise SystemExit(
            f"course data not found in {source!r} (missing: {', '.join(missing)}).\n"
            "Pass --from DIR, the folder holding ids-sst-train.csv, quora-dev.csv, sonnets.txt "
            "...; in this project: --from ../shared/data/cs224n")
    for name in ("vocab.json", "merges.txt"):
        if not os.path.isfile(os.path.join(tokenizer_dir, name)):
            raise SystemExit(f"{name} not found in {tokenizer_dir!r}; pass --tokenizer DIR, the "
                             "GPT-2 tokenizer folder; in this project: "
                             "--tokenizer ../shared/data/gpt2-tokenizer")


def copy_tokenizer(tokenizer_dir: str, out: str) -> None:
    """Validate vocab.json (a {token: id} map with <|endoftext|>) and merges.txt, then copy."""
    with open(os.path.join(tokenizer_dir, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    if not isinstance(vocab, dict) or "<|endoftext|>" not in vocab:
        raise SystemExit(f"{tokenizer_dir}/vocab.json is not a GPT-2 vocabulary "
                         "(no <|endoftext|> entry)")
    with open(os.path.join(tokenizer_dir, "merges.txt"), encoding="utf-8") as f:
        merges = [line for line in f.read().splitlines() if line]
    if merges and merges[0].startswith("#version"):
        merges = merges[1:]
    bad = [i for i, line in enumerate(merges) if len(line.split(" ")) != 2]
    if bad:
        raise SystemExit(f"{tokenizer_dir}/merges.txt: {len(bad)} malformed merge line(s), "
                         f"the first is merge {bad[0] + 1}")
    os.makedirs(out, exist_ok=True)
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(os.path.join(tokenizer_dir, name), os.path.join(out, name))
    print(f"[prepare] tokenizer: {len(vocab)} tokens, {len(merges)} merges -> {out}")


def prepare_sonnets(source: str, out: str, hidden: str | None) -> None:
    """Normalise the sonnet files to LF and cut the graded test sonnets.

    The public held-out test prompts have no full text, so, as for the other tasks, the
    graded test set is carved out of labelled data: the SONNET_TEST sonnets of sonnets.txt
    first in split order.  data/sonnets.txt keeps the rest (the training set),
    data/sonnets_held_out.txt holds the first PROMPT_LINES lines of each test sonnet (the
    prompts), and --staff writes their full text to <hidden>/sonnets-test-true.txt.  The dev
    files are copied as they are, after checking that the dev prompts and true dev sonnets
    hold the same numbers.
    """
    parsed = {}
    for name in SONNET_FILES:
        with open(os.path.join(source, name), "rb") as f:
            text = f.read().decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
        path = os.path.join(out, name)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        parsed[name] = evaluation.read_sonnets(path)
        empty = [n for n, body in parsed[name] if not body.strip()]
        if not parsed[name] or empty:
            raise SystemExit(f"{source}/{name}: no sonnets, or empty sonnet(s) {empty}")
    prompts = [n for n, _ in parsed["sonnets_held_out_dev.txt"]]
    if prompts != [n for n, _ in parsed["TRUE_sonnets_held_out_dev.txt"]]:
        raise SystemExit("sonnets_held_out_dev.txt and TRUE_sonnets_held_out_dev.txt hold "
                         "different sonnet numbers")
    ordered = sorted(parsed["sonnets.txt"], key=lambda sonnet: split_order("sonnets",
                                                                           str(sonnet[0])))
    test_numbers = {number for number, _ in ordered[:SONNET_TEST]}
    train = [sonnet for sonnet in parsed["sonnets.txt"] if sonnet[0] not in test_numbers]
    test = [sonnet for sonnet in parsed["sonnets.txt"] if sonnet[0] in test_numbers]
    evaluation.write_sonnets(os.path.join(out, "sonnets.txt"), train)
    evaluation.write_sonnets(os.path.join(out, "sonnets_held_out.txt"),
                             [(n, "\n".join(text.split("\n")[:PROMPT_LINES])) for n, text in test])
    print(f"[prepare] sonnets: train {len(train)}, dev {len(prompts)}, test {len(test)} "
          f"-> {out}/sonnets*.txt")
    if hidden:
        evaluation.write_sonnets(os.path.join(hidden, "sonnets-test-true.txt"), test)
        print(f"[prepare] sonnets: hidden test sonnets -> {hidden}/sonnets-test-true.txt")


def write_split(out: str, hidden: str | None, task: str, stem: str, splits: dict,
                writer) -> None:
    """Write <stem>-train/dev.csv, <stem>-test-student.csv (no labels) and, for staff,
    the hidden dev/test labels."""
    writer(os.path.join(out, f"{stem}-train.csv"), splits["train"], labelled=True)
    writer(os.path.join(out, f"{stem}-dev.csv"), splits["dev"], labelled=True)
    writer(os.path.join(out, f"{stem}-test-student.csv"), splits["test"], labelled=False)
    print(f"[prepare] {task}: train {len(splits['train'])}, dev {len(splits['dev'])}, "
          f"test {len(splits['test'])} -> {out}/{stem}-*.csv")
    if hidden:
        for split in ("dev", "test"):
            path = os.path.join(hidden, f"{task}-{split}-labels.csv")
            evaluation.write_predictions(path, [e.id for e in splits[split]],
                                         [e.label for e in splits[split]], column="label")
        print(f"[prepare] {task}: hidden labels -> {hidden}/{task}-{{dev,test}}-labels.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--from", dest="source", default=str(course_data("cs224n")),
                        help="folder with the course files (ids-sst-train.csv, ...; default: "
                             "cs224n/ of the course data, training/paths.py)")
    parser.add_argument("--tokenizer", default=None,
                        help="folder with the GPT-2 vocab.json and merges.txt "
                             "(default: ../gpt2-tokenizer next to --from)")
    parser.add_argument("--out", default=os.path.join(REPO, "data"), help="output folder")
    parser.add_argument("--staff", action="store_true",
                        help="also write the hidden dev/test labels for the autograder")
    parser.add_argument("--hidden_dir", default=os.path.join(REPO, "autograder", "hidden"),
                        help="where --staff writes the hidden labels")
    args = parser.parse_args()
    tokenizer_dir = args.tokenizer or os.path.join(os.path.dirname(
        os.path.abspath(args.source)), "gpt2-tokenizer")
    check_source(args.source, tokenizer_dir)
    os.makedirs(args.out, exist_ok=True)
    hidden = args.hidden_dir if args.staff else None
    if hidden:
        os.makedirs(hidden, exist_ok=True)
    problems: list[str] = []

    for task, (stem, num_labels) in SENTIMENT_TASKS.items():
        train, dev = (read_sentiment(os.path.join(args.source, f"{stem}-{split}.csv"),
                                     num_labels, labelled=True, problems=problems)
                      for split in ("train", "dev"))
        dev_ids = {e.id for e in dev}
        train = sorted((e for e in train if e.id not in dev_ids),
                       key=lambda e: split_order(task, e.id))
        test, train = train[:len(dev)], train[len(dev):]
        write_split(args.out, hidden, task, stem, {"train": train, "dev": dev, "test": test},
                    write_sentiment)

    pairs = read_paraphrase(os.path.join(args.source, QUORA_SOURCE), labelled=True,
                            problems=problems)
    pairs.sort(key=lambda e: split_order("para", e.id))
    splits = {"test": pairs[:QUORA_TEST], "dev": pairs[QUORA_TEST:QUORA_TEST + QUORA_DEV],
              "train": pairs[QUORA_TEST + QUORA_DEV:]}
    write_split(args.out, hidden, "para", "quora", splits, write_paraphrase)

    prepare_sonnets(args.source, args.out, hidden)
    copy_tokenizer(tokenizer_dir, os.path.join(args.out, "gpt2-tokenizer"))
    print(f"[prepare] done: {len(problems)} malformed row(s) skipped in total")


if __name__ == "__main__":
    main()

"""The tokenizer's cases (handout 5): `bpe.py`'s training helpers on small inputs with repeats
and ties, training on small corpora, and encoding edge cases.  Token ids are integers, so
every comparison is exact.

The cases above the staff block ship with the handout (with their reference outputs);
the hidden cases and the mutants below it are staff-only: the release drops the block.
"""

from __future__ import annotations

from autograder.case import Case

# producer -> the fenced functions of bpe.py it grades
BPE_GRADES = {"bpe_count_pairs": ("count_pairs",), "bpe_merge_ids": ("merge_ids",),
              "bpe_update_pair_counts": ("update_pair_counts",), "bpe_pair_key": ("pair_key",),
              "bpe_train": ("count_pairs", "merge_ids", "update_pair_counts", "pair_key"),
              "bpe_encode": ("encode_word",)}
BPE_TRAINING = ("bpe_count", "bpe_merge", "bpe_ties")


def bpe_case(name, producer, params, points, rules, title, visibility="after_due_date"):
    """Token ids are integers, so every bpe comparison is exact."""
    return Case(f"bpe/{name}", producer, params, points, rules, f"bpe: {title}",
                visibility=visibility, atol=0.0, rtol=0.0,
                grades=tuple(f"bpe.py:{f}" for f in BPE_GRADES[producer]))


FORBIDDEN = ("tokenizers", "tiktoken", "transformers")
RULES = {
    "bpe_count": "pairs are counted per adjacent position, weighted by word frequency",
    "bpe_merge": "merge_ids replaces non-overlapping occurrences left to right",
    "bpe_ties": "the most frequent pair wins; ties go to the lexicographically greater pair",
    "bpe_encode": "encoding applies the lowest-ranked merge first, until none applies",
}
CASES = [
    bpe_case("visible_count_pairs", "bpe_count_pairs",
             {"words": [[104, 105], [104, 105, 104]], "freqs": [3, 2]}, 2.0, ("bpe_count",),
             "visible: count_pairs on the docstring's example", visibility="visible"),
    bpe_case("visible_merge_ids", "bpe_merge_ids",
             {"examples": [[[1, 2, 3, 1, 2], [1, 2], 7], [[5, 5, 5], [5, 5], 9],
                           [[4], [4, 4], 9]]}, 2.0, ("bpe_merge",),
             "visible: merge_ids on the docstring's examples", visibility="visible"),
    bpe_case("visible_update_pair_counts", "bpe_update_pair_counts",
             {"words": [[104, 105], [104, 105, 104]], "freqs": [3, 2], "w": 1,
              "pairs": [[104, 105, 5, [0, 1]], [105, 104, 2, [1]]], "new_ids": [256, 104]},
             2.0, ("bpe_count",),
             "visible: update_pair_counts on the docstring's example", visibility="visible"),
    bpe_case("visible_pair_key", "bpe_pair_key",
             {"items": [[9, "s", "t"], [9, "e", "s"], [9, "ab", "c"], [9, "a", "bc"],
                        [10, "a", "a"], [9, "z", "z"]]}, 2.0, ("bpe_ties",),
             "visible: pair_key on the docstring's examples", visibility="visible"),
    bpe_case("visible_train", "bpe_train",
             {"corpus": "aaa aa ab ab<|endoftext|>ba ab", "vocab_size": 256 + 1 + 4,
              "special_tokens": ["<|endoftext|>"]}, 2.0, BPE_TRAINING,
             "visible: train_bpe on a small corpus with a special token", visibility="visible"),
    bpe_case("visible_encode", "bpe_encode",
             {"merges": [["a", "b"], ["b", "c"], ["ab", "c"], [" ", "a"]],
              "special_tokens": ["<|endoftext|>"], "texts": ["abc", "<|endoftext|>bc abc", ""]},
             2.0, ("bpe_encode",), "visible: encode/decode, the lowest rank first",
             visibility="visible"),
]

### BEGIN STAFF

RUNS = "zzzz zzz zzzzz zzzz "  # the most frequent pair is (z, z): overlaps matter
LOW_LOWER = ("low low low low low lower lower widest widest widest "
             "newest newest newest newest newest newest")
ENCODE_MERGES = [["t", "h"], ["h", "e"], ["th", "e"], [" ", "t"], [" t", "he"], ["e", "r"],
                 ["l", "l"], ["he", "ll"], ["o", " "], ["a", "b"], ["b", "c"], ["ab", "c"]]
ENCODE_TEXTS = ["", " ", "the theater", "hello world", "thethethe",
                "<|endoftext|>the<|endoftext|><|endoftext|>end", "  two  spaces\n\n\tTab",
                "abc bcab cab", "été 🙂 日本語", "<|endoftext|>"]


CASES += [
    bpe_case("count_pairs_repeats", "bpe_count_pairs",
         {"words": [[5, 5, 5], [5, 5], [1, 2, 1, 2, 1], [7]], "freqs": [1, 4, 2, 9]}, 2.0,
         ("bpe_count",), "count_pairs: repeated pairs, one-id words, frequencies"),
    bpe_case("merge_ids", "bpe_merge_ids",
         {"examples": [[[1, 2, 3, 1, 2], [1, 2], 7], [[5, 5, 5], [5, 5], 9], [[4], [4, 4], 9],
                       [[], [1, 2], 3], [[5, 5, 5, 5], [5, 5], 9], [[2, 1, 2, 2], [2, 2], 8],
                       [[1, 2], [2, 1], 6]]}, 2.0, ("bpe_merge",),
         "merge_ids: left to right, no overlaps, input unchanged"),
    bpe_case("update_pair_counts", "bpe_update_pair_counts",
         {"words": [[104, 105], [104, 105, 104], [105, 105, 105]], "freqs": [3, 2, 5], "w": 1,
          "pairs": [[104, 105, 5, [0, 1]], [105, 104, 2, [1]], [105, 105, 10, [2]]],
          "new_ids": [256, 104]}, 2.0, ("bpe_count",),
         "update_pair_counts: only the changed word, zero counts removed"),
    bpe_case("update_pair_counts_repeats", "bpe_update_pair_counts",
         {"words": [[5, 5, 5, 5], [5, 5]], "freqs": [2, 1], "w": 0,
          "pairs": [[5, 5, 7, [0, 1]]], "new_ids": [9, 9]}, 2.0,
         ("bpe_count",), "update_pair_counts: a word whose pairs repeat"),
    bpe_case("pair_key_order", "bpe_pair_key",
         {"items": [[9, "s", "t"], [9, "e", "s"], [9, "ab", "c"], [9, "a", "bc"],
                    [10, "a", "a"], [9, "z", "z"], [2, "é", "x"], [2, "e", "x"],
                    [9, "a", "b"], [9, "a", "ba"]]}, 3.0, ("bpe_ties",),
         "pair_key: count first, then the greater (left, right), prefixes smaller"),
    bpe_case("train_low_lower", "bpe_train",
         {"corpus": RUNS + LOW_LOWER, "vocab_size": 256 + 1 + 8, "special_tokens": ["<|endoftext|>"]},
         3.0, BPE_TRAINING, "train_bpe on 'low lower newest widest' with runs (ties, overlaps)"),
    bpe_case("train_specials", "bpe_train",
         {"corpus": RUNS + "ab ab<|endoftext|>ba ba ab<|endoftext|>bab aab " * 3,
          "vocab_size": 256 + 1 + 6, "special_tokens": ["<|endoftext|>"]}, 3.0, BPE_TRAINING,
         "train_bpe: pairs never cross special tokens or pre-tokens"),
    bpe_case("train_unicode", "bpe_train",
         {"corpus": RUNS + "héllo héllo wörld wörld 日本 日本 日本 🙂🙂 🙂", "vocab_size": 256 + 10},
         3.0, BPE_TRAINING, "train_bpe on multi-byte UTF-8 text"),
    bpe_case("encode_edge_cases", "bpe_encode",
         {"merges": ENCODE_MERGES, "special_tokens": ["<|endoftext|>"], "texts": ENCODE_TEXTS},
         4.0, ("bpe_encode",), "encode/decode: empty text, spaces, specials, emoji, ranks"),
]
# name -> (rule, file, reference text, mutated text)
MUTANTS = {
    "bpe_ties_reversed": (
        "bpe_ties", "bpe.py", "return (count, left, right)",
        "return (count, tuple(-c for c in left), tuple(-c for c in right))"),
    "bpe_merge_overlapping": (
        "bpe_merge", "bpe.py",
        "            out.append(new_id)\n            i += 2\n",
        "            out.append(new_id)\n            i += 1 if i + 2 < n and ids[i + 2] == b else 2\n"),
    "bpe_encode_leftmost_not_lowest_rank": (
        "bpe_encode", "bpe.py", "best = min(found)",
        "best = next((f for f in found if f is not none), none)"),
}
### END STAFF

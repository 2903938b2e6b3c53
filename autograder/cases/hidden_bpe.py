"""Hidden cases for `bpe.py` (staff-only): the training helpers on small inputs with
repeats and ties, training on small corpora, and encoding edge cases.  Token ids are
integers, so every comparison is exact."""

from __future__ import annotations

from autograder.cases.visible import BPE_TRAINING as TRAINING
from autograder.cases.visible import bpe_case as _bpe

RUNS = "zzzz zzz zzzzz zzzz "  # the most frequent pair is (z, z): overlaps matter
LOW_LOWER = ("low low low low low lower lower widest widest widest "
             "newest newest newest newest newest newest")
ENCODE_MERGES = [["t", "h"], ["h", "e"], ["th", "e"], [" ", "t"], [" t", "he"], ["e", "r"],
                 ["l", "l"], ["he", "ll"], ["o", " "], ["a", "b"], ["b", "c"], ["ab", "c"]]
ENCODE_TEXTS = ["", " ", "the theater", "hello world", "thethethe",
                "<|endoftext|>the<|endoftext|><|endoftext|>end", "  two  spaces\n\n\tTab",
                "abc bcab cab", "été 🙂 日本語", "<|endoftext|>"]


CASES = [
    _bpe("count_pairs_repeats", "bpe_count_pairs",
         {"words": [[5, 5, 5], [5, 5], [1, 2, 1, 2, 1], [7]], "freqs": [1, 4, 2, 9]}, 2.0,
         ("bpe_count",), "count_pairs: repeated pairs, one-id words, frequencies"),
    _bpe("merge_ids", "bpe_merge_ids",
         {"examples": [[[1, 2, 3, 1, 2], [1, 2], 7], [[5, 5, 5], [5, 5], 9], [[4], [4, 4], 9],
                       [[], [1, 2], 3], [[5, 5, 5, 5], [5, 5], 9], [[2, 1, 2, 2], [2, 2], 8],
                       [[1, 2], [2, 1], 6]]}, 2.0, ("bpe_merge",),
         "merge_ids: left to right, no overlaps, input unchanged"),
    _bpe("update_pair_counts", "bpe_update_pair_counts",
         {"words": [[104, 105], [104, 105, 104], [105, 105, 105]], "freqs": [3, 2, 5], "w": 1,
          "pairs": [[104, 105, 5, [0, 1]], [105, 104, 2, [1]], [105, 105, 10, [2]]],
          "new_ids": [256, 104]}, 2.0, ("bpe_count",),
         "update_pair_counts: only the changed word, zero counts removed"),
    _bpe("update_pair_counts_repeats", "bpe_update_pair_counts",
         {"words": [[5, 5, 5, 5], [5, 5]], "freqs": [2, 1], "w": 0,
          "pairs": [[5, 5, 7, [0, 1]]], "new_ids": [9, 9]}, 2.0,
         ("bpe_count",), "update_pair_counts: a word whose pairs repeat"),
    _bpe("pair_key_order", "bpe_pair_key",
         {"items": [[9, "s", "t"], [9, "e", "s"], [9, "ab", "c"], [9, "a", "bc"],
                    [10, "a", "a"], [9, "z", "z"], [2, "é", "x"], [2, "e", "x"],
                    [9, "a", "b"], [9, "a", "ba"]]}, 3.0, ("bpe_ties",),
         "pair_key: count first, then the greater (left, right), prefixes smaller"),
    _bpe("train_low_lower", "bpe_train",
         {"corpus": RUNS + LOW_LOWER, "vocab_size": 256 + 1 + 8, "special_tokens": ["<|endoftext|>"]},
         3.0, TRAINING, "train_bpe on 'low lower newest widest' with runs (ties, overlaps)"),
    _bpe("train_specials", "bpe_train",
         {"corpus": RUNS + "ab ab<|endoftext|>ba ba ab<|endoftext|>bab aab " * 3,
          "vocab_size": 256 + 1 + 6, "special_tokens": ["<|endoftext|>"]}, 3.0, TRAINING,
         "train_bpe: pairs never cross special tokens or pre-tokens"),
    _bpe("train_unicode", "bpe_train",
         {"corpus": RUNS + "héllo héllo wörld wörld 日本 日本 日本 🙂🙂 🙂", "vocab_size": 256 + 10},
         3.0, TRAINING, "train_bpe on multi-byte UTF-8 text"),
    _bpe("encode_edge_cases", "bpe_encode",
         {"merges": ENCODE_MERGES, "special_tokens": ["<|endoftext|>"], "texts": ENCODE_TEXTS},
         4.0, ("bpe_encode",), "encode/decode: empty text, spaces, specials, emoji, ranks"),
]

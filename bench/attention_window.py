"""Sliding-window attention with sinks against full attention: time, memory, perplexity.

    python bench/attention_window.py                                   # time and memory only
    python bench/attention_window.py --checkpoint out/window_rope \\
        --data_dir data/shakespeare_char                               # and the perplexity cost

Time and memory per token: one model (random weights, rope, --n_layer x --n_embd) encodes a
prompt of each --lengths L, then generates --steps more tokens greedily, once with full
attention (a `KVCache` of every key) and once with --window W and --sinks S (the bounded
`SinkKVCache`), taking turns in each of --repeats rounds (best round kept).  Per length:
milliseconds per generated token and the bytes of keys and values the cache holds.

Perplexity cost: the checkpoint (a pretrain.py run with rope, ALiBi or no positions)
scores the first --tokens tokens of --split in disjoint windows of each --eval_lengths
(`evaluate_lm.evaluate_ids`), with full attention and with each --eval_windows W, with no
sinks and with --sinks, in bits per byte.  Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import time

import torch

from config import GPT2Config
from evaluate_lm import evaluate_ids
from models.gpt2 import GPT2Model
from modules.attention import KVCache, SinkKVCache
from training.args import NON_NEGATIVE_INT, POSITIVE_INT
from training.helpformat import HelpFormatter
from training.lm_data import open_split
from training.loading import load_model


def with_window(model: GPT2Model, window: int | None, sinks: int) -> GPT2Model:
    """The same weights with `attention_window=window`, `attention_sinks=sinks`."""
    config = GPT2Config(**{**vars(model.config), "attention_window": window,
                           "attention_sinks": sinks})
    copy = GPT2Model(config).eval()
    copy.load_state_dict(model.state_dict())
    return copy


@torch.inference_mode()
def decode(model: GPT2Model, prompt: torch.Tensor, steps: int) -> tuple[float, int, list[int]]:
    """Encode `prompt` [1, L] through the model's cache, then `steps` greedy tokens:
    (seconds for those steps, bytes of keys and values the cache holds, the tokens)."""
    config, length = model.config, prompt.shape[1]
    cache = (KVCache(config, 1, length + steps) if config.attention_window is None
             else SinkKVCache(config, 1))
    mask = torch.ones(1, length + steps, dtype=torch.long)
    hidden = model(prompt, mask[:, :length], cache=cache)["last_token"]
    tokens = []
    start = time.perf_counter()
    for t in range(steps):
        tokens.append(int(model.hidden_state_to_token(hidden).argmax(-1)))
        step = torch.tensor([[tokens[-1]]])
        hidden = model(step, mask[:, :length + t + 1], cache=cache)["last_token"]
    seconds = time.perf_counter() - start
    return seconds, cache.keys.nbytes + cache.values.nbytes, tokens


def speed_table(args: argparse.Namespace) -> None:
    config = GPT2Config(vocab_size=256, hidden_size=args.n_embd, num_hidden_layers=args.n_layer,
                        num_attention_heads=args.n_head, position_encoding="rope",
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    models = {"full": GPT2Model(config).eval()}
    models["window"] = with_window(models["full"], args.window, args.sinks)
    print(f"\n{args.n_layer} layers x {args.n_embd}, rope, batch 1, {torch.get_num_threads()} "
          f"threads; window W={args.window}, sinks S={args.sinks}; {args.steps} generated "
          f"tokens after a prompt of L, best of {args.repeats}\n")
    print("| L | full ms/token | window ms/token | full KV MiB | window KV MiB |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for length in args.lengths:
        prompt = torch.randint(0, 256, (1, length), generator=torch.Generator().manual_seed(length))
        best = {name: (float("inf"), 0) for name in models}
        for _ in range(args.repeats):
            for name, model in models.items():
                seconds, nbytes, _ = decode(model, prompt, args.steps)
                best[name] = (min(best[name][0], seconds), nbytes)
        ms = {name: 1000 * best[name][0] / args.steps for name in models}
        mib = {name: best[name][1] / 2**20 for name in models}
        print(f"| {length} | {ms['full']:.2f} | {ms['window']:.2f} | {mib['full']:.2f} | "
              f"{mib['window']:.2f} |")


def perplexity_table(args: argparse.Namespace) -> None:
    model, tokenizer = load_model(args.checkpoint, args.data_dir)
    model.eval()
    ids = open_split(args.data_dir, args.split)[: args.tokens]
    trained = model.config.max_position_embeddings
    rows = [("full", None, 0)] + [(f"W={w}, S={s}", w, s) for w in args.eval_windows
                                  for s in dict.fromkeys((0, args.sinks))]
    print(f"\n{args.checkpoint} ({model.config.position_encoding}, trained on "
          f"{trained}-token windows): {args.split} bits per byte, first {len(ids)} tokens\n")
    print("| attention | " + " | ".join(f"windows of {n}" for n in args.eval_lengths) + " |")
    print("| --- |" + " ---: |" * len(args.eval_lengths))
    for name, window, sinks in rows:
        net = with_window(model, window, sinks)
        cells = [evaluate_ids(net, tokenizer, ids, n, n, 4)["bits_per_byte"]
                 for n in args.eval_lengths]
        print(f"| {name} | " + " | ".join(f"{c:.4f}" for c in cells) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--lengths", type=POSITIVE_INT, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--steps", type=POSITIVE_INT, default=32, help="generated tokens")
    parser.add_argument("--window", type=POSITIVE_INT, default=128)
    parser.add_argument("--sinks", type=NON_NEGATIVE_INT, default=4)
    parser.add_argument("--n_layer", type=POSITIVE_INT, default=4)
    parser.add_argument("--n_embd", type=POSITIVE_INT, default=256)
    parser.add_argument("--n_head", type=POSITIVE_INT, default=4)
    parser.add_argument("--repeats", type=POSITIVE_INT, default=3)
    parser.add_argument("--checkpoint", help="a pretrain.py run (rope, alibi or none)")
    parser.add_argument("--data_dir", help="its data/prepare_lm.py folder")
    parser.add_argument("--split", default="val", choices=("train", "val"))
    parser.add_argument("--tokens", type=POSITIVE_INT, default=20000)
    parser.add_argument("--eval_lengths", type=POSITIVE_INT, nargs="+", default=[128, 512])
    parser.add_argument("--eval_windows", type=POSITIVE_INT, nargs="+", default=[16, 64])
    args = parser.parse_args(argv)
    if args.checkpoint and not args.data_dir:
        parser.error(f"--checkpoint {args.checkpoint} needs --data_dir (its corpus)")
    speed_table(args)
    if args.checkpoint:
        perplexity_table(args)


if __name__ == "__main__":
    main()

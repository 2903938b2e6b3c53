"""Forward + backward time of each research switch against the default GPT-2, fused path.

    .venv/bin/python bench/variant_speed.py [--repeats 10] [--threads N] [--device cpu]

Every model has the same size (by default 4 layers, width 256, heads of 64, vocabulary
1024, fp32, train mode without dropout, batch 4 x 256) and `attention_impl="sdpa"`; one switch differs
from the default per row.  On CPU the clock is the process's CPU time (`--clock cpu`, the
default there), which a machine shared with other jobs disturbs far less than wall time;
run it with `--threads 1` so that CPU time is the compute time.  The loss is the mean square of the last hidden states, so the
blocks (where the switches act) are timed, not the output layer.  The runs take turns within every round, so a change in machine load hits
all of them alike.  Prints the median time and the ratio to the default.  Target: within
1.25x, except cabias and sigmoid, which cannot use the fused kernel (they run the explicit
formula; see modules/attention_variants.py).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from config import SWITCHES, GPT2Config
from models.gpt2 import GPT2Model
from training.args import POSITIVE_INT
from training.helpformat import HelpFormatter

# Variants whose weights come out of the attention d columns of an identity at a time
# (ceil((T + 1) / d) calls of the fused kernel; modules/attention_variants.py).
THROUGH_PROBABILITIES = {"sigmoid"}

ROWS: dict[str, dict] = {
    "default (softmax, learned)": {},
    **{f"attention_variant={v}": {"attention_variant": v}
       for v in SWITCHES["attention_variant"] if v != "softmax"},
    **{f"position_encoding={p}": {"position_encoding": p}
       for p in SWITCHES["position_encoding"] if p != "learned"},
    "rope_layout=interleaved": {"position_encoding": "rope", "rope_layout": "interleaved"},
    "mlp=swiglu": {"mlp": "swiglu"},
    "qk_norm": {"qk_norm": True},
    "bias=False": {"bias": False},
}


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def median_times(runs: dict, repeats: int, clock) -> dict[str, float]:
    """Median seconds of each callable by `clock`; the runs take turns within every round,
    so a change in machine load hits all of them alike."""
    for run in runs.values():
        run()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = clock()
            run()
            times[name].append(clock() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--repeats", type=POSITIVE_INT, default=10)
    parser.add_argument("--threads", type=POSITIVE_INT, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--clock", choices=CLOCKS, default=None,
                        help="cpu (process time; the default on cpu) or wall (the default on cuda)")
    parser.add_argument("--layers", type=POSITIVE_INT, default=4)
    parser.add_argument("--width", type=POSITIVE_INT, default=256, help="a multiple of 64")
    parser.add_argument("--batch", type=POSITIVE_INT, default=4)
    parser.add_argument("--seq_len", type=POSITIVE_INT, default=256)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = dict(vocab_size=1024, max_position_embeddings=1024, hidden_size=args.width,
                 num_hidden_layers=args.layers, num_attention_heads=max(1, args.width // 64),
                 hidden_dropout_prob=0.0,
                 attention_probs_dropout_prob=0.0, attention_impl="sdpa")
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, 1024, (args.batch, args.seq_len), generator=generator)
    input_ids = input_ids.to(args.device)
    mask = torch.ones_like(input_ids)

    def step(model: GPT2Model):
        def run():
            model.zero_grad(set_to_none=True)
            hidden = model(input_ids, mask)["last_hidden_state"]
            hidden.square().mean().backward()
            if args.device == "cuda":
                torch.cuda.synchronize()
        return run

    torch.manual_seed(0)
    runs = {name: step(GPT2Model(GPT2Config(**sizes, **switches)).to(args.device).train())
            for name, switches in ROWS.items()}
    clock = args.clock or ("cpu" if args.device == "cpu" else "wall")
    times = median_times(runs, args.repeats, CLOCKS[clock])
    base = times["default (softmax, learned)"]
    print(f"torch {torch.__version__}, {args.device}, {args.threads} threads, {clock} time, median of "
          f"{args.repeats}; forward + backward, batch {args.batch} x {args.seq_len}, "
          f"{args.layers} layers x {args.width} wide, vocabulary 1024, attention_impl=sdpa")
    for name, seconds in times.items():
        switches = ROWS[name]
        note = ("  (probabilities through the kernel)"
                if switches.get("attention_variant") in THROUGH_PROBABILITIES else "")
        print(f"  {name:28s} {seconds * 1000:8.1f} ms   ratio {seconds / base:5.2f}{note}")


if __name__ == "__main__":
    main()

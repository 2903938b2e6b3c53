"""Our training step next to transformers' GPT2LMHeadModel (and nanoGPT's, given a checkout),
in one process, on the CPU.

    .venv/bin/python bench/train_speed.py [--steps 30] [--repeats 5] [--threads N]
        [--data_dir DIR] [--nanogpt DIR]

All contenders train the same configuration on the same batches (``TokenBatches``, one seed):
- ours, eager and sdpa attention, through the one loop (``Trainer.train_step``: sampling the
  batch from the token memmap, forward, loss, backward, clipping, our AdamW step), with
  GPT-2's tanh GELU and, as "ours (..., gelu)", with ``mlp="gelu"``: the exact GELU of
  nanoGPT's ``nn.GELU()``, so that model is nanoGPT's function (their first losses are
  checked equal);
- transformers' GPT2LMHeadModel from the same weights, through a hand loop with our AdamW
  (weight decay on matrices, clipping at 1.0);
- with ``--nanogpt DIR`` (a checkout of karpathy/nanoGPT; its ``model.py`` is imported from
  DIR at run time), nanoGPT's ``GPT`` from the same weights with the optimizer of its own
  ``configure_optimizers`` (``torch.optim.AdamW``), through the loop of its ``train.py``
  (set the lr, ``loss = model(X, Y)``, backward, clip at 1.0, step, zero the gradients;
  Y made contiguous, as its ``get_batch`` gives it).
Default shape: nanoGPT's Tiny Shakespeare CPU recipe (4 layers, 4 heads, width 128,
context 64, batch 12).  Prints the time per step, tokens per second, the ratios ours /
transformers in tokens per second (target >= 1.0) and ours / nanoGPT in time per step
(target <= 1.0; a summary line compares each with its own model: GPT-2's with transformers,
the exact-GELU one with nanoGPT), and the share of our step spent waiting for data (target < 2%); then the
model alone, forward plus backward of the mean cross-entropy on the same batch.  Beside each
wall time it prints the CPU time of this process, which machine load inflates less (with
``--threads 1`` the work runs on the calling thread).  The
contenders take turns in every round, so a change in machine load hits them alike; each
figure is the median round.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import GPT2Config as HFGPT2Config
from transformers import GPT2LMHeadModel
from transformers.utils import logging as hf_logging

from config import GPT2Config
from models.gpt2 import GPT2Model, hf_to_ours
from models.lm import CausalLM
from optimizer import AdamW
from training.args import POSITIVE_INT
from training.batches import TokenBatches
from training.helpformat import HelpFormatter
from training.lm_data import open_split
from training.optimizers import param_groups
from training.trainer import TrainConfig, Trainer

# Names of Hugging Face GPT-2 weights that are Conv1D ([in, out]); nanoGPT's nn.Linear
# holds their transpose (as its GPT.from_pretrained does).
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def lm_loss(model, batch):
    logits = model(batch["input_ids"]).float()  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1))


def load_nanogpt(directory: str, hf_state: dict[str, torch.Tensor], config: GPT2Config):
    """nanoGPT's GPT of ``config``'s shape from DIR/model.py, holding the weights of
    ``hf_state`` (transformers' GPT-2 keys without ``transformer.``)."""
    path = Path(directory) / "model.py"
    if not path.is_file():
        raise SystemExit(f"--nanogpt {directory}: no model.py there (pass a checkout of "
                         "karpathy/nanoGPT)")
    spec = importlib.util.spec_from_file_location("nanogpt_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    nano_config = module.GPTConfig(block_size=config.max_position_embeddings,
                                   vocab_size=config.vocab_size,
                                   n_layer=config.num_hidden_layers,
                                   n_head=config.num_attention_heads,
                                   n_embd=config.hidden_size, dropout=0.0, bias=True)
    with contextlib.redirect_stdout(io.StringIO()):  # its parameter count
        model = module.GPT(nano_config)
    state = {"transformer." + k: v.t() if k.endswith(CONV1D) else v
             for k, v in hf_state.items() if k != "lm_head.weight"}
    state["lm_head.weight"] = hf_state["wte.weight"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.endswith(".attn.bias") for k in missing):
        raise SystemExit(f"--nanogpt {directory}: its GPT does not take GPT-2's weights "
                         f"(missing {missing}, unexpected {unexpected})")
    with contextlib.redirect_stdout(io.StringIO()):  # its optimizer report
        optimizer = model.configure_optimizers(0.1, 6e-4, (0.9, 0.95), "cpu")
    return model, optimizer


def timed_rounds(runs: dict[str, Callable[[], None]], steps: int,
                 repeats: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU seconds (this process) of ``steps`` calls of each run, per round; the
    runs take turns in each round."""
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(steps):
                run()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return wall, cpu


def per_call_ms(rounds: dict[str, list[float]], steps: int) -> dict[str, float]:
    """The median round's milliseconds per call."""
    return {name: 1000 * statistics.median(values) / steps for name, values in rounds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--steps", type=POSITIVE_INT, default=30, help="steps per round")
    parser.add_argument("--repeats", type=POSITIVE_INT, default=5, help="rounds")
    parser.add_argument("--threads", type=POSITIVE_INT, default=torch.get_num_threads())
    parser.add_argument("--data_dir", default=None,
                        help="a prepared corpus (default: random tokens, vocabulary 65)")
    parser.add_argument("--nanogpt", default=None, metavar="DIR",
                        help="a checkout of karpathy/nanoGPT: time its GPT and optimizer too")
    for name, default in (("n_layer", 4), ("n_head", 4), ("n_embd", 128), ("block_size", 64),
                          ("batch_size", 12)):
        parser.add_argument(f"--{name}", type=POSITIVE_INT, default=default)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    tokens = (open_split(args.data_dir, "train") if args.data_dir else
              np.random.default_rng(0).integers(0, 65, 1_000_000).astype(np.uint16))
    vocab = int(tokens.max()) + 1
    config = GPT2Config(vocab_size=vocab, max_position_embeddings=args.block_size,
                        hidden_size=args.n_embd, num_hidden_layers=args.n_layer,
                        num_attention_heads=args.n_head, intermediate_size=4 * args.n_embd,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    hf_model = GPT2LMHeadModel(HFGPT2Config(**config.hf_kwargs()))
    hf_state = {k.removeprefix("transformer."): v for k, v in hf_model.state_dict().items()}

    def batches() -> TokenBatches:
        return TokenBatches(tokens, args.block_size, args.batch_size, seed=0)

    trainers, models = {}, {}
    with tempfile.TemporaryDirectory() as out:
        for impl, mlp in (("eager", "gelu_tanh"), ("sdpa", "gelu_tanh"), ("eager", "gelu"),
                          ("sdpa", "gelu")):
            name = f"ours ({impl})" if mlp == "gelu_tanh" else f"ours ({impl}, {mlp})"
            gpt = GPT2Model(GPT2Config(**{**config.__dict__, "attention_impl": impl,
                                          "mlp": mlp}))
            gpt.load_state_dict(hf_to_ours(hf_state, config.num_hidden_layers))
            models[name] = CausalLM(gpt)
            trainers[name] = Trainer(
                models[name], TrainConfig(max_iters=10**9, out_dir=out, progress=False),
                lm_loss, batches(), None)
    hf_optimizer = AdamW(param_groups(hf_model, 0.1), lr=6e-4, betas=(0.9, 0.95), eps=1e-8)
    hf_batches = batches()

    def hf_step() -> None:
        (batch,) = hf_batches.next_step()
        logits = hf_model(batch["input_ids"]).logits.float()  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, vocab), batch["targets"].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(hf_model.parameters(), 1.0)
        hf_optimizer.step()
        hf_optimizer.zero_grad(set_to_none=True)

    runs = {name: trainer.train_step for name, trainer in trainers.items()}
    runs["transformers"] = hf_step
    if args.nanogpt:
        nano_model, nano_optimizer = load_nanogpt(args.nanogpt, hf_state, config)
        nano_batches = batches()

        def nano_step() -> None:  # the body of nanoGPT's train.py loop
            for group in nano_optimizer.param_groups:
                group["lr"] = 6e-4
            (batch,) = nano_batches.next_step()
            _, loss = nano_model(batch["input_ids"], batch["targets"].contiguous())
            loss.backward()
            torch.nn.utils.clip_grad_norm_(nano_model.parameters(), 1.0)
            nano_optimizer.step()
            nano_optimizer.zero_grad(set_to_none=True)
        runs["nanoGPT"] = nano_step
        (batch,) = batches().next_step()
        with torch.no_grad():
            ours_loss = lm_loss(models["ours (eager, gelu)"], batch).item()
            nano_loss = nano_model(batch["input_ids"], batch["targets"].contiguous())[1].item()
        if abs(ours_loss - nano_loss) > 1e-5:
            raise SystemExit(f"ours with mlp='gelu' is not nanoGPT's model: first loss "
                             f"{ours_loss:.6f} vs nanoGPT's {nano_loss:.6f}")
        print(f"same model as nanoGPT's with mlp='gelu': first loss {ours_loss:.6f}, "
              f"nanoGPT's {nano_loss:.6f}")

    for run in runs.values():
        run()  # warm-up
    for trainer in trainers.values():  # the data wait of the timed rounds only
        trainer.data_time = 0.0
    seconds, cpu_seconds = timed_rounds(runs, args.steps, args.repeats)
    per_step = args.batch_size * args.block_size
    print(f"training step on {torch.get_num_threads()} threads: {args.n_layer} layers, width "
          f"{args.n_embd}, batch {args.batch_size} x {args.block_size}, vocabulary {vocab}, "
          f"median of {args.repeats} rounds of {args.steps} steps")
    step_ms, cpu_ms = per_call_ms(seconds, args.steps), per_call_ms(cpu_seconds, args.steps)
    print(f"{'contender':<18} {'ms/step':>8} {'tokens/s':>10} {'vs transformers':>16} "
          f"{'time vs nanoGPT':>16} {'data wait':>10} {'CPU ms/step':>12} {'vs nanoGPT':>11}")
    for name, took in step_ms.items():
        rate = per_step / took * 1000
        versus_nano, cpu_versus_nano = (
            (f"{took / step_ms['nanoGPT']:.2f}x", f"{cpu_ms[name] / cpu_ms['nanoGPT']:.2f}x")
            if "nanoGPT" in step_ms else ("", ""))
        wait = (f"{100 * trainers[name].data_time / sum(seconds[name]):.2f}%"
                if name in trainers else "")
        print(f"{name:<18} {took:>8.1f} {rate:>10,.0f} "
              f"{step_ms['transformers'] / took:>15.2f}x {versus_nano:>16} {wait:>10} "
              f"{cpu_ms[name]:>12.1f} {cpu_versus_nano:>11}")
    best = {model: min(step_ms[f"ours ({impl}{suffix})"] for impl in ("eager", "sdpa"))
            for model, suffix in (("gelu_tanh", ""), ("gelu", ", gelu"))}
    print(f"summary: ours / transformers tokens/s on GPT-2's model "
          f"{step_ms['transformers'] / best['gelu_tanh']:.2f}x (target >= 1.0)")
    if "nanoGPT" in step_ms:
        print(f"summary: ours / nanoGPT time per step on nanoGPT's model (mlp='gelu') "
              f"{best['gelu'] / step_ms['nanoGPT']:.2f}x (target <= 1.0); with GPT-2's tanh "
              f"GELU {best['gelu_tanh'] / step_ms['nanoGPT']:.2f}x")

    (batch,) = batches().next_step()
    passes = {name: lambda model=model: lm_loss(model, batch).backward()
              for name, model in models.items()}
    passes["transformers"] = lambda: F.cross_entropy(
        hf_model(batch["input_ids"]).logits.reshape(-1, vocab),
        batch["targets"].reshape(-1)).backward()
    if args.nanogpt:
        passes["nanoGPT"] = lambda: nano_model(batch["input_ids"],
                                               batch["targets"].contiguous())[1].backward()
    print(f"\nmodel forward + backward alone, the same batch, median of {args.repeats} rounds "
          f"of {args.steps}")
    for run in passes.values():
        run()  # warm-up
    pass_ms, pass_cpu_ms = (per_call_ms(rounds, args.steps)
                            for rounds in timed_rounds(passes, args.steps, args.repeats))
    print(f"{'contender':<18} {'ms':>8} {'vs transformers':>16} {'vs nanoGPT':>11} "
          f"{'CPU ms':>8} {'vs nanoGPT':>11}")
    for name, took in pass_ms.items():
        versus_nano, cpu_versus_nano = (
            (f"{took / pass_ms['nanoGPT']:.2f}x",
             f"{pass_cpu_ms[name] / pass_cpu_ms['nanoGPT']:.2f}x")
            if "nanoGPT" in pass_ms else ("", ""))
        print(f"{name:<18} {took:>8.1f} {took / pass_ms['transformers']:>15.2f}x "
              f"{versus_nano:>11} {pass_cpu_ms[name]:>8.1f} {cpu_versus_nano:>11}")
    if "nanoGPT" in pass_ms:
        print(f"summary: ours / nanoGPT forward + backward on nanoGPT's model "
              f"(mlp='gelu'): sdpa {pass_ms['ours (sdpa, gelu)'] / pass_ms['nanoGPT']:.2f}x "
              f"(target <= 1.0), eager "
              f"{pass_ms['ours (eager, gelu)'] / pass_ms['nanoGPT']:.2f}x (target <= 1.15)")


if __name__ == "__main__":
    main()

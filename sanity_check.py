"""Check your GPT-2 against Hugging Face's on the same weights (handout 3.5).

    python sanity_check.py                    # weights of `gpt2` (Hugging Face cache or network)
    python sanity_check.py --model_path DIR   # a local Hugging Face GPT-2 checkpoint
    python sanity_check.py --offline          # a random GPT-2 of gpt2's shape, no network

Compares, in fp32 and eval mode, at atol 1e-5:
  last_hidden_state (at real tokens only) with transformers' GPT2Model,
  last_token (each row's last real token) with the same,
  logits through hidden_state_to_token with transformers' GPT2LMHeadModel.
When `gpt2` cannot be had, it says so and checks against a randomly initialised GPT-2 of
the same shape saved to a temporary folder.  Exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
from pathlib import Path

import torch

from training.helpformat import HelpFormatter

ATOL = 1e-5


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether huggingface.co answers on port 443 within `timeout` seconds (never, when
    HF_HUB_OFFLINE is set)."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def gpt2_is_cached() -> bool:
    from transformers import GPT2Config as HFGPT2Config

    try:
        HFGPT2Config.from_pretrained("gpt2", local_files_only=True)
        return True
    except OSError:
        return False


def random_gpt2_small(folder: Path) -> Path:
    from config import GPT2Config
    from utils import save_random_hf_checkpoint

    return save_random_hf_checkpoint(folder, GPT2Config.from_preset("gpt2"), seed=0)


def compare(model_path: str) -> bool:
    """Print the maximum absolute differences; True when all are within ATOL."""
    from transformers import GPT2LMHeadModel
    from transformers import GPT2Model as HFGPT2Model
    from transformers.utils import logging as hf_logging

    from models.gpt2 import GPT2Model

    hf_logging.disable_progress_bar()

    ours = GPT2Model.from_pretrained(model_path).eval()
    hf_model = HFGPT2Model.from_pretrained(model_path, attn_implementation="eager").eval()
    hf_lm = GPT2LMHeadModel.from_pretrained(model_path, attn_implementation="eager").eval()

    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, ours.config.vocab_size, (4, 24), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 20:] = 0  # right padding of different lengths
    attention_mask[2, 9:] = 0
    real = attention_mask.bool()
    last = attention_mask.sum(dim=1) - 1
    rows = torch.arange(input_ids.shape[0])

    with torch.no_grad():
        out = ours(input_ids, attention_mask)
        ours_logits = ours.hidden_state_to_token(out["last_hidden_state"])
        hf_hidden = hf_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        hf_logits = hf_lm(input_ids=input_ids, attention_mask=attention_mask).logits

    checks = {
        "last_hidden_state (real tokens)": (out["last_hidden_state"][real], hf_hidden[real]),
        "last_token": (out["last_token"], hf_hidden[rows, last]),
        "logits via hidden_state_to_token": (ours_logits[real], hf_logits[real]),
    }
    passed = True
    for name, (mine, theirs) in checks.items():
        diff = (mine - theirs).abs().max().item()
        ok = diff <= ATOL
        passed &= ok
        print(f"  {name:34s} max |diff| = {diff:.3e}  {'ok' if ok else 'MISMATCH'}")
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--model_path", help="local Hugging Face GPT-2 checkpoint folder")
    parser.add_argument("--offline", action="store_true",
                        help="skip `gpt2`; use a random GPT-2 of the same shape")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.model_path:
            if not Path(args.model_path, "config.json").is_file():
                print(f"--model_path {args.model_path}: no config.json there; pass a folder "
                      "written by save_pretrained", file=sys.stderr)
                return 2
            model_path = args.model_path
        elif not args.offline and (gpt2_is_cached() or hub_reachable()):
            model_path = "gpt2"
        else:
            print("gpt2 weights unavailable offline: checking against a randomly initialised "
                  "GPT-2 of the same shape instead")
            model_path = str(random_gpt2_small(Path(tmp) / "gpt2-random"))
        print(f"Comparing with transformers on {model_path} (fp32, eval, atol {ATOL:g})")
        try:
            passed = compare(model_path)
        except NotImplementedError as todo:
            print(f"not implemented yet: {todo}")
            return 1
    print("Sanity check PASSED" if passed else "Sanity check FAILED")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

"""Check your AdamW against the reference trajectory (handout 4).

    python optimizer_test.py                # compare with optimizer_test.npy
    python optimizer_test.py --regenerate   # staff: rewrite optimizer_test.npy from optimizer.py

A 3 -> 2 linear model is trained for 1000 steps on seeded data with
lr=1e-3, weight_decay=1e-4, correct_bias=True; its final weight must match the
reference at atol 1e-6 and rtol 1e-4.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from optimizer import AdamW
from training.helpformat import HelpFormatter

REFERENCE = Path(__file__).with_name("optimizer_test.npy")
SEED = 0
ATOL, RTOL = 1e-6, 1e-4  # the final weight against the reference


def train_linear(opt_class: type[torch.optim.Optimizer]) -> torch.Tensor:
    """Final [2, 3] weight after 1000 AdamW steps on the seeded regression task."""
    rng = np.random.default_rng(SEED)
    torch.manual_seed(SEED)
    model = torch.nn.Linear(3, 2, bias=False)
    opt = opt_class(model.parameters(), lr=1e-3, weight_decay=1e-4, correct_bias=True)
    for _ in range(1000):
        opt.zero_grad()
        x = torch.tensor(rng.uniform(size=[model.in_features]), dtype=torch.float32)
        y_hat = model(x)
        y = torch.stack([x[0] + x[1], -x[2]])
        loss = ((y - y_hat) ** 2).sum()
        loss.backward()
        opt.step()
    return model.weight.detach()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--regenerate", action="store_true",
                        help="overwrite optimizer_test.npy with this optimizer's result")
    args = parser.parse_args()
    actual = train_linear(AdamW)
    if args.regenerate:
        np.save(REFERENCE, actual.numpy())
        print(f"wrote {REFERENCE}")
        return 0
    if not REFERENCE.exists():
        print(f"missing {REFERENCE}; it ships with the handout", file=sys.stderr)
        return 1
    reference = torch.from_numpy(np.load(REFERENCE, allow_pickle=False))
    if torch.allclose(reference, actual, atol=ATOL, rtol=RTOL):
        print("Optimizer test passed!")
        return 0
    print(f"Optimizer test FAILED (atol {ATOL:g}, rtol {RTOL:g})")
    print(f"reference:\n{reference}\nyours:\n{actual}")
    print(f"max abs diff: {(reference - actual).abs().max().item():.3e}")
    return 1


if __name__ == "__main__":
    sys.exit(main())

"""The language-model loss and the output-embedding regularisers of handout 8.4 and 8.5.

The training loop calls `lm_losses` for the loss it minimises (with the parts it logs:
the plain cross-entropy beside the regularised loss) and `after_optimizer_step` after
every step.  The training-time options of `GPT2Config` are read here only:
- `z_loss` gamma: + gamma * mean(logsumexp(logits)^2) (PaLM), which keeps the softmax
  normaliser near 1 so that the logits cannot drift;
- `mu_loss` gamma: + gamma * ||mean output-embedding row||^2;
- `mu_centering`: subtract the mean output-embedding row after every optimizer step.
The last two are the output-embedding-centering study's remedies for anisotropic output
embeddings; "output embedding" is `GPT2Model.output_weight` [V, D] (the word embedding when
tied).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from config import GPT2Config


def lm_cross_entropy(logits: torch.Tensor, targets: torch.Tensor,
                     ignore_index: int = -100) -> torch.Tensor:
    """Mean next-token cross-entropy.

    Args:
        logits: [..., V], the scores for the token at each position.
        targets: [...], the token that follows (already shifted), or `ignore_index`.
    Returns:
        a scalar: mean over positions whose target is not `ignore_index` of
        -log softmax(logits)[target], computed in float32.
    """
    return F.cross_entropy(logits.flatten(0, -2).float(), targets.flatten(),
                           ignore_index=ignore_index)


def z_loss(logits: torch.Tensor, gamma: float) -> torch.Tensor:
    """The z-loss (handout 8.4): gamma * mean over positions of logsumexp(logits)^2.

    Args:
        logits: [..., V], the scores of the positions to regularise.
        gamma: the weight (PaLM uses 1e-4).
    Returns:
        a scalar: gamma * mean_p (log sum_v exp(logits[p, v]))^2, the log-sum-exp taken
        over the vocabulary (last dimension) in float32.

    Example: logits [[0, 0], [ln 3, ln 3]] have log-sum-exp ln 2 and ln 6; with gamma 0.1
    the loss is 0.1 * ((ln 2)^2 + (ln 6)^2) / 2 = 0.1 * (0.4805 + 3.2104) / 2 = 0.18454.
    """
    ### BEGIN SOLUTION
    return gamma * logits.float().logsumexp(dim=-1).square().mean()
    ### END SOLUTION


def mu_loss(output_embedding: torch.Tensor, gamma: float) -> torch.Tensor:
    """gamma * ||mu||^2 with mu [D] the mean of the rows of `output_embedding` [V, D]."""
    return gamma * output_embedding.float().mean(dim=0).square().sum()


@torch.no_grad()
def mu_center_(output_embedding: torch.Tensor) -> torch.Tensor:
    """mu-centering (handout 8.5): subtract the mean output-embedding row, in place.

    Args:
        output_embedding: [V, D], one row per vocabulary token (a parameter; changed in
            place, outside autograd).
    Returns:
        the same tensor, now with mean row mu = (1/V) sum_v output_embedding[v] = 0:
        every row v becomes output_embedding[v] - mu.  (Subtracting the same vector from
        every row shifts all logits of a position by one constant, so the softmax is
        unchanged; only the embedding's drift is removed.)

    Example: rows [1, 2] and [3, 6] have mean [2, 4]; they become [-1, -2] and [1, 2].
    """
    ### BEGIN SOLUTION
    return output_embedding.sub_(output_embedding.mean(dim=0, keepdim=True))
    ### END SOLUTION


def lm_losses(config: GPT2Config, logits: torch.Tensor, targets: torch.Tensor,
              output_embedding: torch.Tensor,
              ignore_index: int = -100) -> dict[str, torch.Tensor]:
    """The loss to minimise and its parts, for logging.

    logits [..., V], targets [...] (shifted, `ignore_index` at padding), output_embedding
    [V, D] (`GPT2Model.output_weight`).  Returns {'loss': cross_entropy + z_loss + mu_loss,
    'cross_entropy', 'z_loss', 'mu_loss'}, scalars; z_loss averages over the positions whose
    target counts, and a part whose weight in `config` is 0 is a zero.
    """
    cross_entropy = lm_cross_entropy(logits, targets, ignore_index)
    zero = cross_entropy.new_zeros(())
    counted = targets != ignore_index
    parts = {
        "cross_entropy": cross_entropy,
        "z_loss": z_loss(logits[counted], config.z_loss) if config.z_loss else zero,
        "mu_loss": mu_loss(output_embedding, config.mu_loss) if config.mu_loss else zero,
    }
    return {"loss": parts["cross_entropy"] + parts["z_loss"] + parts["mu_loss"], **parts}


def after_optimizer_step(config: GPT2Config, output_embedding: torch.Tensor) -> None:
    """What follows every optimizer step: mu-centering when `config.mu_centering`."""
    if config.mu_centering:
        mu_center_(output_embedding)

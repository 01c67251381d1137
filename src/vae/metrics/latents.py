"""Statistics of a model's codes: which latent dimensions it uses, and how much of a codebook.

Pure functions of codes, posterior parameters or code counts; families tally them over a test
split through their `diagnostics()` (vae.families.base) and evaluation reports them.
"""

import torch
from torch import Tensor

from vae.distributions import gaussian_kl

ACTIVE_THRESHOLD = 0.01  # Burda et al. 2016, Sec. 5.2: a unit is active when Cov_x(E_q[z_d]) > 0.01


def kl_per_dimension(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(q(z_d|x) || N(0, 1)) for each latent dimension d; the columns sum to `gaussian_kl`.

    mu, logvar: (B, D) -> (B, D)
    """
    return gaussian_kl(mu.reshape(-1, 1), logvar.reshape(-1, 1)).view(mu.shape)


def activity(mu: Tensor) -> Tensor:
    """Cov_x(E_q[z_d]): the variance over examples of each dimension's posterior mean. mu: (N, D) -> (D,)"""
    return mu.var(dim=0, correction=0)


def active_units(mu: Tensor, threshold: float = ACTIVE_THRESHOLD) -> int:
    """How many latent dimensions the encoder uses (Burda et al. 2016, Sec. 5.2). mu: (N, D)"""
    return int((activity(mu) > threshold).sum())


def perplexity(counts: Tensor) -> Tensor:
    """exp(entropy) of code usage: the number of codes used, weighted by use; between 1 and the codebook size.

    counts: (K,) how often each code was chosen -> ()
    """
    p = counts.float() / counts.sum().clamp(min=1)
    return torch.exp(-(p * torch.log(p.clamp(min=1e-12))).sum())

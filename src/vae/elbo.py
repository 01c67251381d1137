"""The ELBO as small pure functions (Kingma & Welling 2014, "Auto-Encoding Variational Bayes").

One reduction convention everywhere: sum over data (or latent) dimensions, keep the
batch dimension, so every figure is nats per example; the caller takes the batch mean.
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I): a sample of q(z|x) that gradients flow through.

    mu, logvar: (B, D) -> z: (B, D)
    """
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) in closed form (Kingma & Welling, Appendix B).

    mu, logvar: (B, D) -> (B,)
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def bernoulli_log_likelihood(logits: Tensor, x: Tensor) -> Tensor:
    """log p(x|z) for independent Bernoulli pixels given logits; stable for any logit size.

    logits, x: (B, ...) with x in [0, 1] -> (B,)
    """
    nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return -nll.flatten(1).sum(dim=1)


def log_normal(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last dimension.

    z, mu, logvar: broadcastable (..., D) -> (...)
    """
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) / logvar.exp()).sum(dim=-1)


def log_standard_normal(z: Tensor) -> Tensor:
    """log N(z; 0, I), the prior's density, summed over the last dimension. z: (..., D) -> (...)"""
    return -0.5 * (math.log(2 * math.pi) + z.pow(2)).sum(dim=-1)


def gaussian_log_likelihood(mean: Tensor, logvar: Tensor, x: Tensor) -> Tensor:
    """log N(x; mean, diag(exp(logvar))), summed over pixels.

    mean, logvar, x: (B, ...) -> (B,)
    """
    return log_normal(x.flatten(1), mean.flatten(1), logvar.flatten(1))


def kl_penalty(kl: Tensor, beta: float, capacity: float | None = None) -> Tensor:
    """The KL term of the loss: beta * KL, or beta * |KL - C| with a capacity C (Burgess et al. 2018).

    kl: (B,) -> (B,)
    """
    if capacity is None:
        return beta * kl
    return beta * (kl - capacity).abs()

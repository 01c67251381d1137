"""Densities and draws as small pure functions: the maths every part of the zoo shares.

One reduction convention everywhere: sum over data (or latent) dimensions, keep the batch
(and sample) dimensions, so every figure is nats per example; the caller takes the means.
"""

import math

import torch
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)


def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I): a draw that gradients flow through (Kingma & Welling 2014).

    mu, logvar: (..., D) -> z: (..., D)
    """
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def log_normal(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last dimension.

    z, mu, logvar: broadcastable (..., D) -> (...)
    """
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(dim=-1)


def log_standard_normal(z: Tensor) -> Tensor:
    """log N(z; 0, I), summed over the last dimension. z: (..., D) -> (...)"""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(dim=-1)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) in closed form (Kingma & Welling 2014, Appendix B).

    mu, logvar: (..., D) -> (...)
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def log_mean_exp(log_w: Tensor, dim: int = 0) -> Tensor:
    """log (1/K) sum_k exp(log_w_k), stably: the importance-weighted bound's reduction (Burda et al. 2016).

    log_w: (K, B) -> (B,)
    """
    return torch.logsumexp(log_w, dim=dim) - math.log(log_w.shape[dim])


def log_mixture_of_gaussians(z: Tensor, mu: Tensor, logvar: Tensor, logits: Tensor) -> Tensor:
    """log sum_m pi_m N(z; mu_m, diag(exp(logvar_m))), pi = softmax(logits).

    z: (..., D); mu, logvar: (M, D); logits: (M,) -> (...)
    """
    per_component = log_normal(z.unsqueeze(-2), mu, logvar)  # (..., M)
    return torch.logsumexp(per_component + torch.log_softmax(logits, dim=-1), dim=-1)

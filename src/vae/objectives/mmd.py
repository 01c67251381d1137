"""The maximum mean discrepancy between the aggregate posterior q(z) and the prior p(z), from draws of each
(Gretton et al. 2012, Lemma 6; as the WAE's penalty: Tolstikhin et al. 2018, "Wasserstein Auto-Encoders", Algorithm 2).

  MMD^2_u = 1/(n(n-1)) sum_{i != j} k(z_i, z_j) + 1/(n(n-1)) sum_{i != j} k(p_i, p_j) - 2/n^2 sum_{i, j} k(z_i, p_j),

the unbiased U-statistic of n codes z_i ~ q(z) (a batch's draws) and n prior draws p_j ~ p(z). Its expectation
is zero when q(z) = p(z), so a single estimate may be slightly negative. Kernels (Sec. 4 of the WAE paper):
inverse multiquadratics k(x, y) = C / (C + |x - y|^2) with C = 2 D sigma^2, sigma^2 the prior's variance per
dimension (1 for N(0, I)), and the Gaussian (RBF) k(x, y) = exp(-|x - y|^2 / C) with the same C.
"""

import torch
from torch import Tensor

from vae.errors import ConfigError

KERNELS = ("imq", "rbf")


def check_kernel(kernel: str) -> str:
    """objective.kernel as one of KERNELS, or a ConfigError that names it."""
    if kernel not in KERNELS:
        raise ConfigError(f"objective.kernel={kernel} is unknown: choose one of {', '.join(KERNELS)}")
    return kernel


def kernel_matrix(a: Tensor, b: Tensor, kernel: str, scale: float) -> Tensor:
    """k(a_i, b_j) for every pair, with C = 2 D scale^2. a: (N, D), b: (M, D) -> (N, M)"""
    c = 2.0 * a.shape[-1] * scale**2
    squared = (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(dim=-1)  # (N, M); cdist's gradient at 0 is NaN-prone
    return c / (c + squared) if kernel == "imq" else torch.exp(-squared / c)


def mmd(codes: Tensor, prior: Tensor, kernel: str = "imq", scale: float = 1.0) -> Tensor:
    """The unbiased MMD^2 estimate between two sets of n draws each, a scalar. codes, prior: (N, D).

    Fewer than two draws leave the U-statistic undefined: it is 0 then (a last batch of one example).
    """
    n = len(codes)
    if n < 2:
        return codes.new_zeros(())
    off_diagonal = 1.0 - torch.eye(n, device=codes.device, dtype=codes.dtype)  # (N, N), i != j
    within_q = (kernel_matrix(codes, codes, kernel, scale) * off_diagonal).sum() / (n * (n - 1))
    within_p = (kernel_matrix(prior, prior, kernel, scale) * off_diagonal).sum() / (n * (n - 1))
    across = kernel_matrix(codes, prior, kernel, scale).mean()
    return within_q + within_p - 2.0 * across


def mmd_to_prior(draw_z: Tensor, sample_latents, kernel: str, scale: float) -> Tensor:
    """MMD between a Draw's codes z (K, B, D), draws of the aggregate posterior, and as many prior draws
    `sample_latents(n)` (the family's, which WAE and InfoVAE keep from `attach`): a scalar."""
    codes = draw_z.flatten(0, 1)  # (K * B, D)
    return mmd(codes, sample_latents(len(codes)).to(codes.dtype), kernel, scale)

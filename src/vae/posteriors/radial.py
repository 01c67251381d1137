"""Radial flows (Rezende & Mohamed 2015, "Variational Inference with Normalizing Flows", Sec. 4.1 and Appendix A.2).

f(z) = z + beta h(alpha, r) (z - z_0), r = ||z - z_0||, h = 1 / (alpha + r), and
log |det df/dz| = (D - 1) log(1 + beta h) + log(1 + beta h + beta h'(r) r), h' = -1 / (alpha + r)^2.
f is invertible when beta >= -alpha (Appendix A.2): here alpha = softplus(a) > 0 and
beta = -alpha + softplus(b') > -alpha, so both factors are positive. z_0, a, b' are amortised (`vae.posteriors.flow`).
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from vae.posteriors.flow import AmortisedFlow


def radial_alpha_beta(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """alpha > 0 and beta > -alpha from unconstrained a, b (.., 1) each (Appendix A.2)."""
    alpha = F.softplus(a)
    return alpha, -alpha + F.softplus(b)


class RadialPosterior(AmortisedFlow):
    """`flows` radial transforms on a diagonal Gaussian, their z_0, alpha, beta amortised from the encoder's features."""

    @staticmethod
    def params_per_flow(latent_dim: int) -> int:
        return latent_dim + 2  # z_0, alpha, beta

    def transform(self, z: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        dim = z.shape[-1]
        z0, a, b = params.split([dim, 1, 1], dim=-1)  # (.., D), (.., 1), (.., 1)
        alpha, beta = radial_alpha_beta(a, b)
        r = (z - z0).norm(dim=-1, keepdim=True)  # (.., 1)
        h = 1 / (alpha + r)
        z = z + beta * h * (z - z0)  # (.., D)
        # 1 + beta h + beta h' r = 1 + beta alpha / (alpha + r)^2
        log_det = (dim - 1) * torch.log1p(beta * h) + torch.log1p(beta * alpha * h.pow(2))  # (.., 1)
        return z, log_det.squeeze(-1)

"""Planar flows (Rezende & Mohamed 2015, "Variational Inference with Normalizing Flows", Sec. 4.1 and Appendix A.1).

f(z) = z + u_hat tanh(w^T z + b), log |det df/dz| = log |1 + u_hat^T psi(z)| with psi(z) = tanh'(w^T z + b) w.
f is invertible when w^T u_hat >= -1; Appendix A.1 makes it so with
u_hat = u + (m(w^T u) - w^T u) w / ||w||^2, m(x) = -1 + softplus(x), so that w^T u_hat = m(w^T u) > -1.
Then 1 + u_hat^T psi = 1 + tanh' m(w^T u) > 0, as tanh' lies in (0, 1]. u, w, b are amortised (`vae.posteriors.flow`).
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from vae.posteriors.flow import AmortisedFlow


def planar_u_hat(u: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """u_hat (.., D), and w^T u_hat = -1 + softplus(w^T u) > -1 (.., 1) (Appendix A.1). u, w: (.., D)

    w^T u_hat is returned as m(w^T u) itself: recomputed from u_hat it would cancel to below -1 in float32
    when w^T u is large and negative.
    """
    wu = (w * u).sum(dim=-1, keepdim=True)  # (.., 1)
    m = F.softplus(wu) - 1
    w_norm_sq = w.pow(2).sum(dim=-1, keepdim=True).clamp_min(1e-12)  # (.., 1)
    return u + (m - wu) * w / w_norm_sq, m


class PlanarPosterior(AmortisedFlow):
    """`flows` planar transforms on a diagonal Gaussian, their u, w, b amortised from the encoder's features."""

    @staticmethod
    def params_per_flow(latent_dim: int) -> int:
        return 2 * latent_dim + 1  # u, w, b

    def transform(self, z: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        u, w, b = params.split([z.shape[-1], z.shape[-1], 1], dim=-1)  # (.., D), (.., D), (.., 1)
        u_hat, wu_hat = planar_u_hat(u, w)
        a = (w * z).sum(dim=-1, keepdim=True) + b  # (.., 1)
        z = z + u_hat * torch.tanh(a)  # (.., D)
        slope = 1 - torch.tanh(a).pow(2)  # tanh'(a) in (0, 1]
        # log(1 + u_hat^T psi) = log(1 + tanh'(a) w^T u_hat); the floor only where float32 rounds m(w^T u) to -1
        log_det = torch.log1p((slope * wu_hat).clamp_min(-1 + 1e-6))  # (.., 1)
        return z, log_det.squeeze(-1)

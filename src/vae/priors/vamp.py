"""VampPrior: p(z) = (1/K) sum_k q(z|u_k) over K learned pseudo-inputs u_k (Tomczak & Welling 2018, Eq. 9).

The pseudo-inputs are images pushed through the model's own encoder, so the prior moves with the
posterior. With a flow posterior the components are its base Gaussians q0(z|u_k).
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vae.distributions import log_normal
from vae.errors import check_int


class VampPrior(nn.Module):
    standard_normal = False
    needs_encoder = True  # its pseudo-inputs pass the model's encoder and posterior (`base`)
    on_sphere = False  # a density on R^D

    def __init__(self, latent_dim: int, in_shape: tuple[int, int, int], components: int = 500):
        super().__init__()
        check_int("prior.components", components, 1)
        # Tomczak & Welling's initialisation for [0, 1] images: N(0.05, 0.01), kept in [0, 1] by a hard tanh
        self.pseudo_inputs = nn.Parameter(0.05 + 0.01 * torch.randn(components, *in_shape))

    def components(self, base) -> tuple[Tensor, Tensor]:
        """mu, logvar (K, D) of q(z|u_k) for each pseudo-input."""
        return base(F.hardtanh(self.pseudo_inputs, 0.0, 1.0))

    def log_prob(self, z: Tensor, base) -> Tensor:
        mu, logvar = self.components(base)  # (K, D) each
        per_component = log_normal(z.unsqueeze(-2), mu, logvar)  # (..., K)
        return torch.logsumexp(per_component, dim=-1) - math.log(len(mu))

    def sample(self, n: int, base, generator: torch.Generator | None = None) -> Tensor:
        mu, logvar = (t.detach() for t in self.components(base))
        k = torch.randint(len(mu), (n,), generator=generator).to(mu.device)
        eps = torch.randn(n, mu.shape[1], generator=generator).to(mu.device)
        return mu[k] + torch.exp(0.5 * logvar[k]) * eps

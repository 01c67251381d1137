"""The uniform prior on the sphere S^(D-1) in R^D (Davidson et al. 2018, "Hyperspherical Variational
Auto-Encoders", Sec. 3.3): p(z) = 1 / |S^(D-1)| with respect to the surface measure; `posterior=vmf` only."""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vae.hypersphere import log_sphere_area


class UniformSphere(nn.Module):
    standard_normal = False
    needs_encoder = False
    on_sphere = True  # a density on S^(D-1): it scores only codes on the sphere (posterior=vmf)

    def __init__(self, latent_dim: int, in_shape: tuple[int, int, int] | None = None):
        super().__init__()
        self.latent_dim = latent_dim
        self.register_buffer("anchor", torch.zeros(()))  # follows the module's device

    def log_prob(self, z: Tensor, base=None) -> Tensor:
        """-log |S^(D-1)| for every z (..., D) -> (...)"""
        return z.new_full(z.shape[:-1], -log_sphere_area(z.shape[-1]))

    def sample(self, n: int, base=None, generator: torch.Generator | None = None) -> Tensor:
        """n points (n, D) uniform on the sphere: normalised standard normal draws."""
        return F.normalize(torch.randn(n, self.latent_dim, generator=generator), dim=-1).to(self.anchor.device)

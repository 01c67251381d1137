"""The standard normal prior N(0, I) (Kingma & Welling 2014)."""

import torch
from torch import Tensor, nn

from vae.distributions import log_standard_normal


class StandardNormal(nn.Module):
    standard_normal = True  # factorises over dimensions; the closed-form KL applies
    needs_encoder = False
    on_sphere = False  # a density on R^D

    def __init__(self, latent_dim: int, in_shape: tuple[int, int, int] | None = None):
        super().__init__()
        self.latent_dim = latent_dim
        self.register_buffer("anchor", torch.zeros(()))  # follows the module's device

    def log_prob(self, z: Tensor, base=None) -> Tensor:
        return log_standard_normal(z)

    def sample(self, n: int, base=None, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.latent_dim, generator=generator).to(self.anchor.device)

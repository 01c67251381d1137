"""A learned mixture of diagonal Gaussians, p(z) = sum_m pi_m N(mu_m, diag(exp(logvar_m))) (Dilokthanakul et al. 2016;
the learned-prior baseline of Tomczak & Welling 2018, Sec. 3)."""

import torch
from torch import Tensor, nn

from vae.distributions import log_mixture_of_gaussians
from vae.errors import check_int


class MixtureOfGaussians(nn.Module):
    standard_normal = False
    needs_encoder = False
    on_sphere = False  # a density on R^D

    def __init__(self, latent_dim: int, in_shape: tuple[int, int, int] | None = None, components: int = 10):
        super().__init__()
        check_int("prior.components", components, 1)
        self.mu = nn.Parameter(torch.randn(components, latent_dim))  # spread out, so components start apart
        self.logvar = nn.Parameter(torch.zeros(components, latent_dim))
        self.logits = nn.Parameter(torch.zeros(components))

    def log_prob(self, z: Tensor, base=None) -> Tensor:
        return log_mixture_of_gaussians(z, self.mu.float(), self.logvar.float(), self.logits.float())

    def sample(self, n: int, base=None, generator: torch.Generator | None = None) -> Tensor:
        probs = torch.softmax(self.logits.detach().float().cpu(), dim=0)
        m = torch.multinomial(probs, n, replacement=True, generator=generator)  # (n,)
        eps = torch.randn(n, self.mu.shape[1], generator=generator)
        return (self.mu.detach().cpu()[m] + torch.exp(0.5 * self.logvar.detach().cpu()[m]) * eps).to(self.mu.device)

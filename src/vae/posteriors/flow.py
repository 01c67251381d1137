"""Amortised normalising flows on a diagonal Gaussian (Rezende & Mohamed 2015, "Variational Inference with
Normalizing Flows", Sec. 4): z_0 ~ N(mu, diag(exp(logvar))), z_N = f_N(...f_1(z_0)), and
log q(z_N|x) = log N(z_0) - sum_n log |det df_n/dz_(n-1)| (Eq. 7).

The parameters of every transform are amortised, as in the paper's Sec. 4: one linear head reads them from
the encoder's features h, so each example has its own flow. A transform (`posterior=planar`, `radial`) only
says how many numbers it takes and how it moves z; this base holds the rest, as `IAFPosterior` does for IAF.
"""

import torch
from torch import Tensor, nn

from vae.distributions import log_normal, reparameterize
from vae.errors import check_int
from vae.posteriors.gaussian import GaussianPosterior


class AmortisedFlow(nn.Module):
    """A diagonal Gaussian base, then `flows` transforms with parameters read from the encoder's features."""

    diagonal_gaussian = False  # the flow leaves the Gaussian family
    has_log_q = True
    on_sphere = False
    needs_log_joint = False  # its draws do not depend on the decoder

    def __init__(self, in_features: int, latent_dim: int, flows: int = 8):
        super().__init__()
        self.latent_dim = check_int("latent", latent_dim, 1)
        self.flows = check_int("posterior.flows", flows, 1)
        self.gaussian = GaussianPosterior(in_features, latent_dim)
        self.to_params = nn.Linear(in_features, flows * self.params_per_flow(latent_dim))

    @staticmethod
    def params_per_flow(latent_dim: int) -> int:
        """How many numbers one transform of a D-wide code takes."""
        raise NotImplementedError

    def transform(self, z: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        """One step: z (.., D), its raw parameters (.., P) -> (f(z) (.., D), log |det df/dz| (..))."""
        raise NotImplementedError

    def base(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return self.gaussian.base(h)

    def flow(self, z: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        """z_0 (.., D), every step's parameters (.., N * P) -> (z_N (.., D), sum of the log-dets (..))."""
        log_det = torch.zeros(z.shape[:-1], device=z.device)
        for step in params.chunk(self.flows, dim=-1):  # (.., P) each
            z, step_log_det = self.transform(z, step)
            log_det = log_det + step_log_det
        return z, log_det

    def forward(self, h: Tensor, k: int = 1) -> tuple[Tensor, Tensor, None]:
        mu, logvar = self.base(h)  # (B, D) each
        z0 = reparameterize(mu.expand(k, *mu.shape), logvar.expand(k, *logvar.shape))  # (K, B, D)
        params = self.to_params(h).float().expand(k, -1, -1)  # (K, B, N * P)
        z, log_det = self.flow(z0, params)
        return z, log_normal(z0, mu, logvar) - log_det, None

    def mean(self, h: Tensor) -> Tensor:
        """The flow applied to the base mean: a typical code (q's mean has no closed form)."""
        return self.flow(self.base(h)[0], self.to_params(h).float())[0]

    def kl(self, h: Tensor, prior) -> None:
        """No closed form: the objective takes the Monte Carlo estimate log q - log p."""
        return None

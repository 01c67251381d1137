"""A von Mises-Fisher q(z|x) on the sphere S^(D-1) (Davidson et al. 2018, "Hyperspherical Variational
Auto-Encoders", S-VAE): mu = the encoder's direction normalised, kappa = softplus(.) + 1 (as their code,
so the concentration never collapses to 0). Draws come from Wood's (1994) rejection sampler, with gradients
through the accepted draw and the correction term of the paper's Eq. 9 left out (`vae.hypersphere`).
Its KL against the uniform prior on the sphere (`prior=uniform_sphere`) has a closed form; densities are
with respect to the sphere's surface measure, so it takes no prior on R^D.
"""

import torch.nn.functional as F
from torch import Tensor, nn

from vae.errors import ConfigError
from vae.hypersphere import sample_vmf, vmf_kl_uniform, vmf_log_prob


class VMFPosterior(nn.Module):
    """One linear map from the encoder's features to (mu (B, D) on the sphere, kappa (B, 1) >= 1)."""

    diagonal_gaussian = False
    has_log_q = True
    on_sphere = True  # codes and densities live on S^(D-1)
    needs_log_joint = False  # its draws do not depend on the decoder

    def __init__(self, in_features: int, latent_dim: int):
        super().__init__()
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 2:
            raise ConfigError(
                f"latent={latent_dim} is invalid for posterior=vmf: the sphere S^(D-1) needs an integer D >= 2"
            )
        self.latent_dim = latent_dim
        self.head = nn.Linear(in_features, latent_dim + 1)

    def params(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """h (B, F) -> mu (B, D) unit vectors, kappa (B, 1), float32."""
        out = self.head(h).float()
        return F.normalize(out[..., :-1], dim=-1), F.softplus(out[..., -1:]) + 1

    def forward(self, h: Tensor, k: int = 1) -> tuple[Tensor, Tensor, None]:
        mu, kappa = self.params(h)
        mu, kappa = mu.expand(k, *mu.shape), kappa.expand(k, *kappa.shape)  # (K, B, D), (K, B, 1)
        z = sample_vmf(mu, kappa)  # (K, B, D)
        return z, vmf_log_prob(z, mu, kappa), None

    def mean(self, h: Tensor) -> Tensor:
        """The mean direction mu (B, D), q's mode."""
        return self.params(h)[0]

    def kl(self, h: Tensor, prior) -> Tensor | None:
        """KL(vMF(mu, kappa) || U(S^(D-1))) (B,) in closed form against the uniform prior on the sphere."""
        return vmf_kl_uniform(self.params(h)[1].squeeze(-1), self.latent_dim) if prior.on_sphere else None

"""A diagonal Gaussian q(z|x) = N(mu, diag(exp(logvar))) (Kingma & Welling 2014)."""

from torch import Tensor, nn

from vae.distributions import gaussian_kl, log_normal, reparameterize
from vae.errors import check_int


class GaussianPosterior(nn.Module):
    """One linear map from the encoder's features to (mu, logvar)."""

    diagonal_gaussian = True  # q(z|x) is its base Gaussian: closed-form KL, beta-TCVAE's estimator
    has_log_q = True
    on_sphere = False
    needs_log_joint = False  # its draws do not depend on the decoder

    def __init__(self, in_features: int, latent_dim: int):
        super().__init__()
        self.latent_dim = check_int("latent", latent_dim, 1)
        self.head = nn.Linear(in_features, 2 * latent_dim)

    def base(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """h (B, F) -> mu, logvar (B, D) each, float32."""
        mu, logvar = self.head(h).float().chunk(2, dim=-1)
        return mu, logvar

    def forward(self, h: Tensor, k: int = 1) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor]]:
        mu, logvar = self.base(h)
        z = reparameterize(mu.expand(k, *mu.shape), logvar.expand(k, *logvar.shape))  # (K, B, D)
        return z, log_normal(z, mu, logvar), (mu, logvar)

    def mean(self, h: Tensor) -> Tensor:
        return self.base(h)[0]

    def kl(self, h: Tensor, prior) -> Tensor | None:
        """KL(q(z|x) || N(0, I)) (B,) in closed form against the standard normal, else None."""
        return gaussian_kl(*self.base(h)) if prior.standard_normal else None

"""A deterministic encoder: z = the encoder's mean, no noise (the autoencoder of `objective=ae`, and the regularised
deterministic autoencoder of Ghosh et al. 2020, "From Variational to Deterministic Autoencoders", `objective=rae`).

q(z|x) is a point mass, which has no density on R^D: `has_log_q` is False, so the objectives that need log q
(elbo, iwae, capacity, beta_tcvae) are refused, and the test figures that need it (elbo, kl, log p(x), bits/dim)
are marked not applicable. A Draw still carries log q = 0 (the convention VQ-VAE's point mass on its codes
uses), so that the logged train/ and val/ `elbo` is log p(x|z) + log p(z) at the code, log p(x, z): what picks
best.ckpt; it bounds nothing.
"""

from torch import Tensor, nn

from vae.errors import check_int


class DeterministicPosterior(nn.Module):
    """One linear map from the encoder's features to the code z (B, D)."""

    diagonal_gaussian = False
    has_log_q = False  # a point mass: no density
    on_sphere = False
    needs_log_joint = False  # its draws do not depend on the decoder

    def __init__(self, in_features: int, latent_dim: int):
        super().__init__()
        self.latent_dim = check_int("latent", latent_dim, 1)
        self.head = nn.Linear(in_features, latent_dim)

    def forward(self, h: Tensor, k: int = 1) -> tuple[Tensor, Tensor, None]:
        mu = self.mean(h)  # (B, D)
        z = mu.expand(k, *mu.shape)  # (K, B, D): the same code K times
        return z, z.new_zeros(z.shape[:-1]), None  # log q taken as 0, see the module's docstring

    def mean(self, h: Tensor) -> Tensor:
        return self.head(h).float()

    def kl(self, h: Tensor, prior) -> None:
        return None

"""The VAE (Kingma & Welling 2014; Rezende et al. 2014) with swappable nets, posterior, prior and likelihood."""

import torch
from torch import Tensor, nn

from vae.distributions import gaussian_kl
from vae.draw import Draw
from vae.posteriors.gaussian import GaussianPosterior
from vae.priors.standard_normal import StandardNormal


class VAEModel(nn.Module):
    """x -> encoder -> posterior q(z|x) -> z -> decoder -> likelihood p(x|z), with the prior p(z)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, posterior: nn.Module, prior: nn.Module, likelihood):
        super().__init__()
        self.encoder, self.decoder, self.posterior, self.prior = encoder, decoder, posterior, prior
        self.likelihood = likelihood
        # the closed-form KL is exact only for a diagonal Gaussian q against N(0, I)
        self.closed_form_kl = isinstance(posterior, GaussianPosterior) and isinstance(prior, StandardNormal)

    @property
    def latent_dim(self) -> int:
        return self.posterior.latent_dim

    def features(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """What the posterior sees: the encoder's features of x (B, F). A conditional family adds y."""
        return self.encoder(x)

    def decoder_input(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """What the decoder sees: z (N, D). A conditional family adds y."""
        return z

    def base(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x -> (mu, logvar) of the posterior's base Gaussian: VampPrior's components."""
        return self.posterior.base(self.features(x, y))

    def draw(self, x: Tensor, y: Tensor | None = None, k: int = 1) -> Draw:
        """x (B, C, H, W) -> a Draw of K codes per example."""
        batch = len(x)
        z, log_q, gaussian = self.posterior(self.features(x, y), k)  # (K, B, D), (K, B)
        y_rep = None if y is None else y.repeat(k, *[1] * (y.dim() - 1))  # (K * B, ...), in z.flatten(0, 1)'s order
        params = self.decoder(self.decoder_input(z.flatten(0, 1), y_rep))  # (K * B, C * params_per_pixel, H, W)
        x_rep = x.expand(k, *x.shape).flatten(0, 1)  # (K * B, C, H, W)
        log_px_z = self.likelihood.log_prob(params, x_rep).view(k, batch)
        kl = gaussian_kl(*gaussian) if self.closed_form_kl else None
        return Draw(log_px_z, self.prior.log_prob(z, self.base), log_q, z, kl, gaussian)

    def encode(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.posterior.mean(self.features(x, y)).float()

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.likelihood.mean(self.decoder(self.decoder_input(z, y)))

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.prior.sample(n, self.base, generator)

    def sample(self, n: int, y: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        return self.decode(self.sample_latents(n, generator), y)

"""A VAE with two or more stochastic layers (Burda et al. 2016, "Importance Weighted Autoencoders",
Sec. 5 and Appendix C; the hierarchy of Rezende et al. 2014).

q(z1, ..., zL | x) = q(z1|x) q(z2|z1) ... q(zL|z(L-1)),   p(x, z) = p(zL) p(z(L-1)|zL) ... p(z1|z2) p(x|z1).
The x-side nets are `model=`'s (Burda's preset: `model=burda`, 784-200-200, tanh) and the posterior
of z1 is `posterior=`'s; between stochastic layers sit small MLPs with diagonal Gaussian heads
(Burda: q(z2|z1) 100-100-100-50, p(z1|z2) 50-100-100-100). The top layer's prior is `prior=`'s.
A Draw's z is the concatenation [z1, ..., zL] and its densities are the full hierarchical ones,
so the ELBO, the IWAE bound and evaluation's log p(x) need nothing else. `latent` is the top layer's
widths are `family.latents`; `latent=` is refused unless it is the top layer's width (or left at its default).
"""

from collections.abc import Sequence

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from vae.distributions import log_normal, reparameterize
from vae.draw import Draw
from vae.errors import ConfigError, check_int
from vae.families.base import layer_kl_name
from vae.families.hierarchy import Hierarchy
from vae.families.parts import gaussian_parts, option
from vae.families.vae import refuse_encoder_priors
from vae.nets.mlp import check_hidden, mlp


class GaussianLayer(nn.Module):
    """z_in (..., D_in) -> MLP -> (mu, logvar) (..., D_out): one conditional diagonal Gaussian between layers."""

    def __init__(self, in_dim: int, out_dim: int, hidden: list[int], activation: str):
        super().__init__()
        self.net = nn.Sequential(mlp([in_dim, *hidden], activation), nn.Linear(hidden[-1], 2 * out_dim))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.net(z).float().chunk(2, dim=-1)
        return mu, logvar


class HVAEModel(Hierarchy):
    """x -> z1 -> ... -> zL bottom-up (inference); zL -> ... -> z1 -> x top-down (generation)."""

    name = "hvae"

    def __init__(self, encoder, decoder, posterior, prior, likelihood, latents: list[int], hidden: list[int], activation: str = "tanh"):
        super().__init__()
        self.encoder, self.decoder, self.posterior, self.prior, self.likelihood = encoder, decoder, posterior, prior, likelihood
        self.sizes = check_latents(latents)
        hidden = check_hidden(hidden)
        pairs = list(zip(self.sizes, self.sizes[1:]))
        self.up = nn.ModuleList(GaussianLayer(lower, upper, hidden, activation) for lower, upper in pairs)  # q(z(i+1)|z(i))
        self.down = nn.ModuleList(GaussianLayer(upper, lower, hidden, activation) for lower, upper in pairs)  # p(z(i)|z(i+1))

    @classmethod
    def from_config(cls, cfg: DictConfig, shape: tuple[int, int, int]) -> "HVAEModel":
        sizes = check_latents(cfg.family.latents)
        parts = gaussian_parts(cfg, shape, sizes[0], sizes[-1])
        if parts["posterior"].on_sphere or not parts["posterior"].has_log_q:
            raise ConfigError(
                f"family=hvae takes posterior=gaussian, iaf, planar or radial, not posterior={option(cfg, 'posterior')}: "
                "its upper layers are Gaussians on R^D, scored at a z1 with a density on R^D"
            )
        refuse_encoder_priors(cfg, parts["prior"], "hvae", "not to the top layer")
        if parts["posterior"].needs_log_joint:
            raise ConfigError(
                f"family=hvae takes no posterior={option(cfg, 'posterior')}: its steps move the whole code along "
                "log p(x, z), and this family's z1 is drawn before the layers above it; use family=vae, or posterior=iaf"
            )
        family = {key: value for key, value in cfg.family.items() if key not in ("_target_", "latents")}
        return cls(**parts, latents=sizes, **family)

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        cls.check_latent(cfg, check_latents(cfg.family.latents))

    def draw(self, x: Tensor, y: Tensor | None = None, k: int = 1) -> Draw:
        """x (B, C, H, W) -> a Draw of K codes [z1, ..., zL] (K, B, sum of sizes) per example."""
        batch = len(x)
        z1, log_q1, _ = self.posterior(self.encoder(x), k)  # (K, B, D1), (K, B)
        zs, log_qs = [z1], [log_q1]
        for layer in self.up:  # bottom-up: z(i+1) ~ q(z(i+1)|z(i))
            mu, logvar = layer(zs[-1])
            zs.append(reparameterize(mu, logvar))
            log_qs.append(log_normal(zs[-1], mu, logvar))
        log_ps = [log_normal(lower, *layer(upper)) for layer, lower, upper in zip(self.down, zs, zs[1:])]  # p(z(i)|z(i+1))
        log_ps.append(self.prior.log_prob(zs[-1], None))  # p(zL)
        params = self.decoder(z1.flatten(0, 1))  # (K * B, C * params_per_pixel, H, W)
        x_rep = x.expand(k, *x.shape).flatten(0, 1)
        log_px_z = self.likelihood.log_prob(params, x_rep).view(k, batch)
        kl_layers = {layer_kl_name(i): (q - p).mean(dim=0) for i, (q, p) in enumerate(zip(log_qs, log_ps))}  # (B,) each
        return Draw(log_px_z, sum(log_ps), sum(log_qs), torch.cat(zs, dim=-1), logged=kl_layers, kl_layers=list(kl_layers.values()))

    def encode(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """[E[z1|x], E[z2|E[z1|x]], ...] (B, sum of sizes): the means up the stack."""
        codes = [self.posterior.mean(self.encoder(x)).float()]
        for layer in self.up:
            codes.append(layer(codes[-1])[0])
        return torch.cat(codes, dim=-1)


def check_latents(latents) -> list[int]:
    """family.latents as a list of two or more layer sizes, bottom first, or a ConfigError that names it."""
    if isinstance(latents, (str, bytes)) or not isinstance(latents, Sequence):
        raise ConfigError(f"family.latents={latents} is invalid: give a list of two or more layer sizes, bottom first, e.g. [100, 50]")
    sizes = [check_int("family.latents", size, 1) for size in latents]
    if len(sizes) < 2:
        raise ConfigError(f"family.latents={sizes} is invalid: give two or more layer sizes, bottom first, e.g. [100, 50]")
    return sizes

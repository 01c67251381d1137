"""What every stack of stochastic layers z1, ..., zL (bottom first) shares, whatever its inference:
the codes as one concatenation, the generative path p(zL) p(z(L-1)|zL) ... p(z1|z2) drawn top-down,
the hierarchy picture's redraw, and the refusals (`family.hvae`, `family.ladder`).
"""

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from vae.errors import ConfigError
from vae.families.base import Family, Objective, loss_not_applicable

UNSET_LATENT = 20  # conf/train.yaml's `latent`: what a command that does not mention latent= gives


class Hierarchy(Family):
    """A family whose code is [z1, ..., zL] (sizes `sizes`); `down[i]` maps z(i+1) to p(z(i)|z(i+1))'s (mu, logvar),
    `prior` gives p(zL), `decoder` and `likelihood` p(x|z1)."""

    name = "hierarchy"  # family=<name>, for messages
    picture_names = (*Family.picture_names, "hierarchy")
    sizes: list[int]
    down: nn.ModuleList

    @classmethod
    def check_latent(cls, cfg: DictConfig, sizes: list[int]) -> None:
        """`latent=` is unused by a stack: refused unless it is the default or the top layer's width."""
        if cfg.latent not in (UNSET_LATENT, sizes[-1]):
            raise ConfigError(
                f"latent={cfg.latent} is unused by family={cls.name}, whose layer sizes are family.latents={sizes} (bottom "
                f"first, the prior sees the last): give family.latents={[*sizes[:-1], cfg.latent]} instead"
            )

    @property
    def latent_dim(self) -> int:
        return sum(self.sizes)

    @property
    def layer_sizes(self) -> list[int]:
        return list(self.sizes)

    @property
    def not_applicable(self) -> dict[str, str]:
        return loss_not_applicable(self.likelihood)

    def check_objective(self, objective: Objective) -> None:
        if not objective.needs_log_q:
            raise ConfigError(
                f"{objective.spelled} does not fit family={self.name}: it trains a deterministic encoder, "
                "which family=vae and family=cvae take (posterior=deterministic)"
            )
        needs = objective.needs_gaussian_posterior or objective.needs_standard_normal_prior
        if needs:  # q(z|x) is a stack of layers, and p(z) is learned below the top layer
            raise ConfigError(
                f"{objective.spelled} does not fit family={self.name}: {needs}, and this family's q(z|x) and p(z) "
                "are stacks of layers; use family=vae"
            )

    def split(self, z: Tensor) -> list[Tensor]:
        """[z1, ..., zL] from their concatenation (..., sum of sizes)."""
        return list(z.split(self.layer_sizes, dim=-1))

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """E[x|z1] from the concatenated codes (N, sum of sizes): x depends on z1 alone."""
        return self.likelihood.mean(self.decoder(self.split(z)[0]))

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Ancestral draws zL ~ p(zL), then each z(i) ~ p(z(i)|z(i+1)), concatenated (n, sum of sizes)."""
        top = self.prior.sample(n, None, generator)  # (n, D_L)
        z = torch.cat([top.new_zeros(n, sum(self.sizes[:-1])), top], dim=-1)
        return self.redraw_below(z, len(self.sizes) - 1, generator)

    def redraw_below(self, z: Tensor, layer: int, generator: torch.Generator | None = None) -> Tensor:
        """Keep z's layers from `layer` up; draw each one below anew from p(z(i)|z(i+1)), top-down. z: (N, sum of sizes)"""
        zs = self.split(z)
        for i in reversed(range(layer)):
            zs[i] = self.sample_below(self.down[i], zs[i + 1], generator)
        return torch.cat(zs, dim=-1)

    def sample_below(self, layer: nn.Module, upper: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One draw of p(z(i)|z(i+1)) (n, D_i) with the caller's generator."""
        mu, logvar = layer(upper)
        eps = torch.randn(mu.shape, generator=generator).to(mu.device)
        return mu + torch.exp(0.5 * logvar) * eps

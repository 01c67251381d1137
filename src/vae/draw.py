"""`Draw`: what one pass of a model over a batch gives its objective, the one shape families and objectives share."""

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class Draw:
    """K posterior draws for each of B examples, with the densities an objective needs.

    log_px_z, log_pz, log_qz_x: (K, B) nats; z: (K, B, D).
    kl: (B,) closed-form KL(q(z|x) || p(z)) where the pair has one, else None (the objective then
    uses the Monte Carlo estimate log q - log p).
    gaussian: (mu, logvar) (B, D) each when q(z|x) is a diagonal Gaussian, else None.
    kl_layers: a stack's KL estimate of each stochastic layer (B,), bottom first, summing to kl_estimate;
    empty for one layer (what per-layer training aids such as free bits read).
    """

    log_px_z: Tensor
    log_pz: Tensor
    log_qz_x: Tensor
    z: Tensor
    kl: Tensor | None = None
    gaussian: tuple[Tensor, Tensor] | None = None
    extra_loss: dict[str, Tensor] = field(default_factory=dict)  # (B,) terms a family adds to the loss
    logged: dict[str, Tensor] = field(default_factory=dict)  # scalars a family wants logged
    kl_layers: list[Tensor] = field(default_factory=list)  # (B,) each, bottom first

    @property
    def log_w(self) -> Tensor:
        """log importance weights log p(x, z) - log q(z|x), (K, B) (Burda et al. 2016, Eq. 8)."""
        return self.log_px_z + self.log_pz - self.log_qz_x

    @property
    def kl_estimate(self) -> Tensor:
        """KL(q(z|x) || p(z)) per example (B,): closed form where valid, else the mean of log q - log p over K."""
        return self.kl if self.kl is not None else (self.log_qz_x - self.log_pz).mean(dim=0)

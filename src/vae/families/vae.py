"""The VAE (Kingma & Welling 2014; Rezende et al. 2014) with swappable nets, posterior, prior and likelihood."""

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from vae.distributions import gaussian_kl
from vae.draw import Draw
from vae.errors import ConfigError, check_int
from vae.families.base import Family, Objective, loss_not_applicable
from vae.families.parts import gaussian_parts, option
from vae.metrics.latents import kl_per_dimension


class VAEModel(Family):
    """x -> encoder -> posterior q(z|x) -> z -> decoder -> likelihood p(x|z), with the prior p(z)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, posterior: nn.Module, prior: nn.Module, likelihood):
        super().__init__()
        self.encoder, self.decoder, self.posterior, self.prior = encoder, decoder, posterior, prior
        self.likelihood = likelihood
        # the closed-form KL is exact only for a diagonal Gaussian q against N(0, I)
        self.closed_form_kl = posterior.diagonal_gaussian and prior.standard_normal

    @classmethod
    def from_config(cls, cfg: DictConfig, shape: tuple[int, int, int]) -> "VAEModel":
        latent = check_int("latent", cfg.latent, 1)
        return cls(**gaussian_parts(cfg, shape, latent, latent))

    @property
    def latent_dim(self) -> int:
        return self.posterior.latent_dim

    @property
    def not_applicable(self) -> dict[str, str]:
        why = "the encoder is deterministic (posterior=deterministic): q(z|x) is a point mass without a density"
        deterministic = {} if self.posterior.has_log_q else {name: why for name in ("elbo", "kl", "nll", "bpd")}
        return loss_not_applicable(self.likelihood) | deterministic

    def check_objective(self, objective: Objective) -> None:
        if objective.needs_log_q and not self.posterior.has_log_q:
            raise ConfigError(
                f"{objective.spelled} needs log q(z|x), which the deterministic encoder (posterior=deterministic) "
                "does not have: use objective=ae or objective=rae"
            )
        if not objective.needs_log_q and self.posterior.has_log_q:
            raise ConfigError(
                f"{objective.spelled} trains a deterministic encoder: use posterior=deterministic (a posterior "
                "with a density trains with objective=elbo)"
            )
        if objective.needs_gaussian_posterior and not self.posterior.diagonal_gaussian:
            raise ConfigError(
                f"{objective.spelled} needs posterior=gaussian: {objective.needs_gaussian_posterior}, "
                "which a flow or a vMF posterior does not have"
            )
        if objective.needs_standard_normal_prior and not self.prior.standard_normal:
            raise ConfigError(
                f"{objective.spelled} needs prior=standard_normal: {objective.needs_standard_normal_prior}"
            )

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
        # (K * B, ...) in z.flatten(0, 1)'s order, for a conditional family; the others ignore labels: no copy per step
        y_rep = y.repeat(k, *[1] * (y.dim() - 1)) if y is not None and self.classes else None
        x_rep = x.expand(k, *x.shape).flatten(0, 1)  # (K * B, C, H, W)

        def log_px_z(z: Tensor) -> Tensor:  # z (K, B, D) -> log p(x|z) (K, B)
            # a posterior's gradient taken inside Lightning's test loop: autograd cannot save an inference-mode tensor
            # (the image, or the label a learned label code looks up)
            copy = x_rep.is_inference() and torch.is_grad_enabled()
            labels = y_rep.clone() if copy and y_rep is not None else y_rep
            params = self.decoder(self.decoder_input(z.flatten(0, 1), labels))  # (K * B, C * params_per_pixel, H, W)
            return self.likelihood.log_prob(params, x_rep.clone() if copy else x_rep).view(k, batch)

        h = self.features(x, y)  # (B, F)
        if self.posterior.needs_log_joint:  # it moves z along log p(x, z) (posterior=hamiltonian)
            z, log_q, gaussian = self.posterior(h, k, log_joint=lambda z: log_px_z(z) + self.prior.log_prob(z, self.base))
        else:
            z, log_q, gaussian = self.posterior(h, k)  # (K, B, D), (K, B)
        kl = gaussian_kl(*gaussian) if self.closed_form_kl else self.posterior.kl(h, self.prior)  # (B,) or None
        return Draw(log_px_z(z), self.prior.log_prob(z, self.base), log_q, z, kl, gaussian)

    def encode(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.posterior.mean(self.features(x, y)).float()

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.likelihood.mean(self.decoder(self.decoder_input(z, y)))

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.prior.sample(n, self.base, generator)

    def decoder_parameters(self) -> list[nn.Parameter]:
        return list(self.decoder.parameters())

    def kl_per_dimension(self, x: Tensor, y: Tensor | None = None) -> Tensor | None:
        """KL(q(z_d|x) || N(0, 1)) (B, D): a meaning only for a Gaussian posterior against a factorised N(0, I)."""
        return kl_per_dimension(*self.base(x, y)) if self.closed_form_kl else None


def refuse_encoder_priors(cfg: DictConfig, prior: nn.Module, family: str, why: str) -> None:
    """A prior that passes images through the encoder (VampPrior) does not fit a family whose encoder does not
    give the prior's code from an image alone."""
    if prior.needs_encoder:
        raise ConfigError(
            f"prior={option(cfg, 'prior')} does not fit family={family}: its pseudo-inputs pass the encoder to z1 {why}; "
            "use prior=standard_normal or prior=mog"
        )

"""Config -> the parts of a model and its objective: the one place that knows how parts plug together.

Shapes come from the data config (`ImageData.shape`, known before any data is loaded) and from
the parts themselves (the encoder's `out_features`, the likelihood's `params_per_pixel`).
"""

from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from vae.errors import ConfigError, check_int
from vae.objectives.beta_tcvae import BetaTCVAE
from vae.posteriors.gaussian import GaussianPosterior
from vae.priors.standard_normal import StandardNormal


def image_shape(cfg: DictConfig) -> tuple[int, int, int]:
    """(C, H, W) of the data this config trains on."""
    return instantiate(cfg.data).shape


def build_model(cfg: DictConfig) -> nn.Module:
    """The family of `cfg.family` with its nets, posterior, prior and likelihood."""
    latent = check_int("latent", cfg.latent, 1)
    shape = image_shape(cfg)
    likelihood = instantiate(cfg.likelihood)
    encoder = instantiate(cfg.model.encoder, in_shape=shape)
    decoder = instantiate(
        cfg.model.decoder, out_shape=shape, latent_dim=latent, params_per_pixel=likelihood.params_per_pixel
    )
    posterior = instantiate(cfg.posterior, in_features=encoder.out_features, latent_dim=latent)
    prior = instantiate(cfg.prior, latent_dim=latent, in_shape=shape)
    return instantiate(cfg.family, encoder=encoder, decoder=decoder, posterior=posterior, prior=prior, likelihood=likelihood)


def build_objective(cfg: DictConfig, model: nn.Module):
    """The objective of `cfg.objective`, refused with one line where it cannot work with the model's parts."""
    objective = instantiate(cfg.objective)
    if isinstance(objective, BetaTCVAE):
        if not isinstance(model.posterior, GaussianPosterior):
            raise ConfigError(
                "objective=beta_tcvae needs posterior=gaussian: its minibatch estimate of q(z) uses the "
                "posterior's Gaussian density per dimension, which a flow posterior does not have"
            )
        if not isinstance(model.prior, StandardNormal):
            raise ConfigError(
                "objective=beta_tcvae needs prior=standard_normal: its dimension-wise KL needs a prior that "
                "factorises over dimensions"
            )
    return objective

"""Config -> the parts of a model and its objective: the one place that knows how parts plug together.

Shapes come from the data config (`ImageData.shape`, known before any data is loaded) and from
the parts themselves (the encoder's `out_features`, the likelihood's `params_per_pixel`).
"""

from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from vae.errors import ConfigError, check_int
from vae.families.hvae import HVAEModel, check_latents
from vae.families.vqvae import VQVAEModel
from vae.objectives.beta_tcvae import BetaTCVAE
from vae.objectives.elbo import ELBO
from vae.posteriors.gaussian import GaussianPosterior
from vae.priors.standard_normal import StandardNormal
from vae.priors.vamp import VampPrior


def image_shape(cfg: DictConfig) -> tuple[int, int, int]:
    """(C, H, W) of the data this config trains on."""
    return instantiate(cfg.data).shape


def build_model(cfg: DictConfig) -> nn.Module:
    """The family of `cfg.family` with its nets, posterior, prior and likelihood.

    What each family needs of the parts is read from its config: `latents` (hvae: z1 feeds the
    decoder, the top layer gets the prior), `classes` (cvae: the one-hot label widens the posterior's
    input and the decoder's), `codebook_size` (vqvae: codes * latent feed the decoder; no posterior or prior).
    """
    latent = check_int("latent", cfg.latent, 1)
    shape = image_shape(cfg)
    likelihood = instantiate(cfg.likelihood)
    encoder = instantiate(cfg.model.encoder, in_shape=shape)
    if "codebook_size" in cfg.family:
        check_defaults(cfg, "vqvae", "it has its own prior over codes (family.code_prior) and q(z|x) is the nearest codes")
        codes = check_int("family.codes", cfg.family.codes, 1)
        decoder = instantiate(cfg.model.decoder, out_shape=shape, latent_dim=codes * latent, params_per_pixel=likelihood.params_per_pixel)
        return instantiate(cfg.family, encoder=encoder, decoder=decoder, likelihood=likelihood, latent_dim=latent)
    sizes = check_latents(cfg.family.latents) if "latents" in cfg.family else [latent]  # bottom (feeds the decoder) to top
    extra = {}
    if "classes" in cfg.family:
        extra["classes"] = label_classes(cfg)
    label_dim = extra.get("classes", 0)
    decoder = instantiate(
        cfg.model.decoder, out_shape=shape, latent_dim=check_int("latent", sizes[0], 1) + label_dim,
        params_per_pixel=likelihood.params_per_pixel,
    )  # fmt: skip
    posterior = instantiate(cfg.posterior, in_features=encoder.out_features + label_dim, latent_dim=sizes[0])
    prior = instantiate(cfg.prior, latent_dim=sizes[-1], in_shape=shape)
    if isinstance(prior, VampPrior) and ("latents" in cfg.family or label_dim):
        family = "hvae" if "latents" in cfg.family else "cvae"
        raise ConfigError(
            f"prior=vamp does not fit family={family}: its pseudo-inputs pass the encoder to z1 "
            f"{'not to the top layer' if family == 'hvae' else 'without a label'}; use prior=standard_normal or prior=mog"
        )
    return instantiate(
        cfg.family, encoder=encoder, decoder=decoder, posterior=posterior, prior=prior, likelihood=likelihood, **extra
    )


def check_defaults(cfg: DictConfig, family: str, why: str) -> None:
    """A family without a posterior or prior part refuses a choice of them rather than ignore it."""
    if not cfg.posterior._target_.endswith("GaussianPosterior") or not cfg.prior._target_.endswith("StandardNormal"):
        raise ConfigError(f"family={family} takes no posterior= or prior=: {why}; leave them at their defaults")


def label_classes(cfg: DictConfig) -> int:
    """How many labels a conditional family sees: family.classes, or the data set's count when null."""
    classes = cfg.family.classes
    if classes is None:
        classes = instantiate(cfg.data).num_classes
        if classes < 2:
            raise ConfigError(
                f"family=cvae needs labelled images, but data.path={cfg.data.path} holds one class folder, so every "
                "image has the same label: lay it out as <path>/<class>/<image> with two or more classes"
            )
    return check_int("family.classes", classes, 2)


def build_objective(cfg: DictConfig, model: nn.Module):
    """The objective of `cfg.objective`, refused with one line where it cannot work with the model's parts."""
    objective = instantiate(cfg.objective)
    if isinstance(model, VQVAEModel) and (not isinstance(objective, ELBO) or objective.k != 1):
        raise ConfigError(
            f"family=vqvae takes objective=elbo with objective.k=1, not {describe_objective(cfg)}: its q(z|x) is a "
            "point mass on the nearest codes, so every draw is the same"
        )
    if isinstance(objective, BetaTCVAE) and isinstance(model, HVAEModel):
        raise ConfigError("objective=beta_tcvae does not fit family=hvae: its estimator of q(z) needs one Gaussian layer")
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


def describe_objective(cfg: DictConfig) -> str:
    name = cfg.objective._target_.split(".")[-2]  # the module: elbo, iwae, beta_tcvae
    return f"objective={name} objective.k={cfg.objective.get('k', 1)}"

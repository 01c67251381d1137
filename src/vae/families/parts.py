"""Building a family's parts from the config: the nets, posterior, prior and likelihood groups.

Shared by the families' `from_config`; shapes come from the data's (C, H, W) and from the parts
themselves (the encoder's `out_features`, the likelihood's `params_per_pixel`).
"""

from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from vae.errors import ConfigError, check_int


def option(cfg: DictConfig, group: str) -> str:
    """The option of a group as typed on the command line, read from its `_target_`'s module: `prior=vamp`."""
    return cfg[group]._target_.split(".")[-2]


def encoder_and_decoder(cfg: DictConfig, shape: tuple[int, int, int], decoder_input: int, likelihood) -> tuple[nn.Module, nn.Module]:
    """`model=`'s encoder of x and its decoder of a `decoder_input`-wide vector to the likelihood's parameters."""
    encoder = instantiate(cfg.model.encoder, in_shape=shape)
    decoder = instantiate(cfg.model.decoder, out_shape=shape, latent_dim=decoder_input, params_per_pixel=likelihood.params_per_pixel)
    return encoder, decoder


def gaussian_parts(cfg: DictConfig, shape: tuple[int, int, int], bottom: int, top: int, label_dim: int = 0) -> dict:
    """Encoder, decoder, posterior of the `bottom`-wide code, prior of the `top`-wide one, likelihood; a one-hot
    label of `label_dim` widens what the posterior and the decoder see."""
    likelihood = instantiate(cfg.likelihood)
    encoder, decoder = encoder_and_decoder(cfg, shape, bottom + label_dim, likelihood)
    posterior = instantiate(cfg.posterior, in_features=encoder.out_features + label_dim, latent_dim=bottom)
    prior = instantiate(cfg.prior, latent_dim=top, in_shape=shape)
    check_posterior_and_prior(cfg, posterior, prior)
    if posterior.needs_log_joint and cfg.model.get("compile"):
        raise ConfigError(
            f"posterior={option(cfg, 'posterior')} does not combine with model.compile=true: its steps call autograd.grad on "
            "log p(x, z) inside the step and differentiate the result, which torch.compile does not support; leave model.compile=false"
        )
    return {"encoder": encoder, "decoder": decoder, "posterior": posterior, "prior": prior, "likelihood": likelihood}


def check_posterior_and_prior(cfg: DictConfig, posterior: nn.Module, prior: nn.Module) -> None:
    """Refuse, in one line, a prior whose density does not live where the posterior's codes do (the sphere or R^D),
    and a prior that a deterministic encoder's objectives (ae, rae) would never train."""
    if posterior.on_sphere and not prior.on_sphere:
        raise ConfigError(
            f"posterior={option(cfg, 'posterior')} draws codes on the sphere S^(D-1), where prior={option(cfg, 'prior')} "
            "has no density: use prior=uniform_sphere"
        )
    if prior.on_sphere and not posterior.on_sphere:
        raise ConfigError(
            f"prior={option(cfg, 'prior')} is a density on the sphere S^(D-1), but posterior={option(cfg, 'posterior')} "
            "draws codes in R^D: use posterior=vmf"
        )
    if not posterior.has_log_q and not prior.standard_normal:
        raise ConfigError(
            f"posterior={option(cfg, 'posterior')} takes prior=standard_normal, not prior={option(cfg, 'prior')}: "
            "objective=ae and rae do not train a prior, so its weights would stay as initialised"
        )


def refuse_parts(cfg: DictConfig, family: str, why: str) -> None:
    """A family without a posterior or prior part refuses a choice of them rather than ignore it."""
    if option(cfg, "posterior") != "gaussian" or option(cfg, "prior") != "standard_normal":
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

"""Config -> system and Trainer; checkpoint -> system. Used by train, eval and sample alike."""

from collections.abc import Iterable
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ProgressBar
from omegaconf import DictConfig, OmegaConf

import vae.steps_per_call as steps_per_call
from vae.checkpoints import AtomicCheckpointIO, checkpoint_config, describe, load_checkpoint
from vae.errors import ConfigError
from vae.system import VAE
from vae.targets import trusted_by


def build_system(cfg: DictConfig) -> VAE:
    """The system for this config; the resolved config rides in its checkpoints."""
    return VAE(OmegaConf.to_container(cfg, resolve=True))


def build_trainer(cfg: DictConfig, automatic: bool = True) -> L.Trainer:
    """The Trainer of `cfg`; `automatic`: whether the system uses Lightning's own optimisation step."""
    callbacks = [instantiate(c) for c in cfg.get("callbacks", {}).values() if c]
    if not cfg.trainer.get("enable_progress_bar", True):  # Lightning refuses a bar callback it was told to hide
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    loggers = [instantiate(c) for c in cfg.get("logger", {}).values() if c]
    settings = steps_per_call.trainer_settings(cfg, automatic)  # with several steps a call, the system clips
    # every checkpoint file is written atomically and read with weights_only=True
    plugin = AtomicCheckpointIO(trust=trusted_by(cfg))
    return instantiate(settings, callbacks=callbacks, logger=loggers or False, plugins=[plugin])


def load_system(path: str | Path, trust: Iterable[str] = ()) -> tuple[VAE, DictConfig]:
    """(the system in eval mode with the checkpoint's weights, the config it was trained with).

    trust: targets outside the package's own that the stored config may name (vae.targets).
    """
    checkpoint = load_checkpoint(path, trust=trust)
    cfg = checkpoint_config(checkpoint, path)
    system = build_system(cfg)
    try:
        system.load_state_dict(checkpoint["state_dict"])
    except RuntimeError:
        raise ConfigError(f"ckpt_path={path} does not fit its own config ({describe(cfg)}): the file is damaged") from None
    return system.eval(), cfg

"""Checkpoints: read without running code from the file, and rebuild the model they were saved from.

Every checkpoint holds the composed config it was trained with (`hyper_parameters.config`),
so eval and sampling need nothing but the file.
"""

import pickle
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from vae.errors import ConfigError


def load_checkpoint(path: str | Path) -> dict:
    """The checkpoint as plain data: `weights_only=True` refuses any pickle that would run code."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path={path} does not exist: give a .ckpt file from a run's checkpoints/ folder")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = str(err).strip().splitlines()[0]
        raise ConfigError(f"ckpt_path={path} is refused: it holds more than tensors and plain data ({reason})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise ConfigError(f"ckpt_path={path} is not a readable checkpoint (truncated or corrupt?): {err}") from None


def checkpoint_config(checkpoint: dict, path: str | Path) -> DictConfig:
    """The composed config a checkpoint was trained with."""
    try:
        return OmegaConf.create(checkpoint["hyper_parameters"]["config"])
    except (KeyError, TypeError):
        raise ConfigError(f"ckpt_path={path} holds no training config: was it written by src/train.py?") from None


def load_system(path: str | Path):
    """(VAE in eval mode with the checkpoint's weights, the config it was trained with)."""
    from hydra.utils import instantiate

    from vae.training import build_system

    checkpoint = load_checkpoint(path)
    cfg = checkpoint_config(checkpoint, path)
    system = build_system(cfg, instantiate(cfg.data))
    try:
        system.load_state_dict(checkpoint["state_dict"])
    except RuntimeError:
        raise ConfigError(f"ckpt_path={path} does not fit its own config ({describe(cfg)}): the file is damaged") from None
    return system.eval(), cfg


def describe(cfg: DictConfig) -> str:
    """The choices that fix a model's shape, as overrides: what a checkpoint needs to be loaded into."""
    model = cfg.model.encoder._target_.rsplit(".", 1)[-1].removesuffix("Encoder").lower()
    return f"model={model} latent={cfg.latent} data={cfg.data.source}"

"""Variational autoencoder experiments on PyTorch Lightning and Hydra.

Commands: `vae-train`, `vae-eval`, `vae-sample` (or `python src/train.py` in a checkout).
In Python (vae.api): `vae.load(ckpt)`, `vae.encode`, `vae.decode`, `vae.reconstruct`, `vae.sample`,
`vae.evaluate`, `vae.draw_pictures`, `vae.compose(overrides)` and `vae.train(cfg)`.
"""

import importlib
from typing import TYPE_CHECKING

from omegaconf import OmegaConf

__version__ = "0.2.0"
# `${burda2016_epochs:${budget}}`: the length of Burda et al. 2016's schedule at a budget (experiment=burda2016)
OmegaConf.register_new_resolver(
    "burda2016_epochs", lambda budget: sum(importlib.import_module("vae.schedules").burda2016_stages(budget)), replace=True
)

__all__ = ["compose", "train", "load", "encode", "decode", "reconstruct", "sample", "evaluate", "draw_pictures"]

if TYPE_CHECKING:
    from vae.api import compose, decode, draw_pictures, encode, evaluate, load, reconstruct, sample, train


def __getattr__(name: str):
    """The API loads torch and Lightning on first use, so the commands' `--help` stays instant."""
    if name in __all__:
        return getattr(importlib.import_module("vae.api"), name)
    raise AttributeError(f"module 'vae' has no attribute {name!r}")

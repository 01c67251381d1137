"""The conditional VAE (Sohn et al. 2015, "Learning Structured Output Representation using Deep
Conditional Generative Models"): q(z|x, y), p(x|z, y) and p(z), so log p(x|y) is what it models.

The label y enters as a one-hot vector: concatenated to the encoder's features before the
posterior's head, and to z before the decoder. That keeps every net of `model=` usable
unchanged (a conv net sees y after its convolutions rather than as extra input channels).
"""

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor

from vae.errors import ConfigError, check_int
from vae.families.parts import gaussian_parts, label_classes
from vae.families.vae import VAEModel, refuse_encoder_priors


class CVAEModel(VAEModel):
    """A VAE whose encoder and decoder both see the label; `classes` labels 0 .. classes - 1."""

    picture_names = ("class_samples", "label_samples", "reconstructions")

    def __init__(self, encoder, decoder, posterior, prior, likelihood, classes: int):
        super().__init__(encoder, decoder, posterior, prior, likelihood)
        self.classes = classes

    @classmethod
    def from_config(cls, cfg: DictConfig, shape: tuple[int, int, int]) -> "CVAEModel":
        latent, classes = check_int("latent", cfg.latent, 1), label_classes(cfg)
        parts = gaussian_parts(cfg, shape, latent, latent, label_dim=classes)
        refuse_encoder_priors(cfg, parts["prior"], "cvae", "without a label")
        return cls(**parts, classes=classes)

    def one_hot(self, y: Tensor | None, like: Tensor) -> Tensor:
        """y (N,) -> (N, classes) in like's dtype and device."""
        if y is None:
            raise ConfigError("family=cvae needs a label for every image: give labelled data (and label= to sample.py)")
        return F.one_hot(y.long(), self.classes).to(like)

    def features(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.encoder(x)  # (B, F)
        return torch.cat([h, self.one_hot(y, h)], dim=-1)  # (B, F + classes)

    def decoder_input(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return torch.cat([z, self.one_hot(y, z)], dim=-1)  # (N, D + classes)

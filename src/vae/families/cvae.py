"""The conditional VAE (Sohn et al. 2015, "Learning Structured Output Representation using Deep
Conditional Generative Models"): q(z|x, y), p(x|z, y) and p(z), so log p(x|y) is what it models.

The label y enters as a learned embedding (`family.label_embedding` wide, N(0, 1) entries at the
start): concatenated to the encoder's features before the posterior's head, and to z before the
decoder. That keeps every net of `model=` usable unchanged (a conv net sees y after its
convolutions rather than as extra input channels).

Why an embedding rather than the one-hot vector: a one-hot label is one input of 0 or 1 beside the
D inputs of z, so it reaches each of the decoder's first units through one small weight. At
latent=20 the decoder learns the digit from z instead, z keeps the class (a linear probe reads it
from the codes), and a prior draw decoded with y=7 is whatever digit its z lies among: 37% sevens
after the README's run. Dropping the class from z would save at most log(classes) nats of KL, too
weak a pull in 50 epochs. A dense 32-wide code gives the label as much say as z from the first step,
and the samples of each label are that digit (docs/reproductions.md#the-conditional-vaes-labels).
`family.label_embedding=0` is the one-hot label, the layout of checkpoints written before it.
"""

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn

from vae.errors import ConfigError, check_int
from vae.families.parts import gaussian_parts, label_classes
from vae.families.vae import VAEModel, refuse_encoder_priors


class CVAEModel(VAEModel):
    """A VAE whose encoder and decoder both see the label; `classes` labels 0 .. classes - 1, each a learned
    `label_embedding`-wide code (0: the one-hot label)."""

    picture_names = ("class_samples", "label_samples", "reconstructions")

    def __init__(self, encoder, decoder, posterior, prior, likelihood, classes: int, label_embedding: int = 0):
        super().__init__(encoder, decoder, posterior, prior, likelihood)
        self.classes = classes
        self.label_embedding = nn.Embedding(classes, label_embedding) if label_embedding else None

    @classmethod
    def from_config(cls, cfg: DictConfig, shape: tuple[int, int, int]) -> "CVAEModel":
        latent, classes = check_int("latent", cfg.latent, 1), label_classes(cfg)
        width = check_int("family.label_embedding", cfg.family.label_embedding, 0)
        parts = gaussian_parts(cfg, shape, latent, latent, label_dim=width or classes)
        refuse_encoder_priors(cfg, parts["prior"], "cvae", "without a label")
        return cls(**parts, classes=classes, label_embedding=width)

    def label(self, y: Tensor | None, like: Tensor) -> Tensor:
        """y (N,) -> its code (N, label_embedding), or its one-hot (N, classes), in like's dtype and device."""
        if y is None:
            raise ConfigError("family=cvae needs a label for every image: give labelled data (and label= to sample.py)")
        if self.label_embedding is None:
            return F.one_hot(y.long(), self.classes).to(like)
        return self.label_embedding(y.long()).to(like)

    def features(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.encoder(x)  # (B, F)
        return torch.cat([h, self.label(y, h)], dim=-1)  # (B, F + E)

    def decoder_input(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return torch.cat([z, self.label(y, z)], dim=-1)  # (N, D + E)

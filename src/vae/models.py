"""Encoders and decoders: plain `nn.Module`s that know nothing of training.

An encoder maps x (B, C, H, W) to the mean and log-variance of a diagonal Gaussian q(z|x);
a decoder maps z (B, latent_dim) to `params_per_pixel` maps per channel, the parameters of
p(x|z) (1: Bernoulli logits; 2: Gaussian mean and log-variance). The image shape comes from
the data module, never from here.
"""

import math

import torch
from torch import Tensor, nn

from vae.errors import ConfigError, check_int


class MLPEncoder(nn.Module):
    """x -> hidden -> (mu, logvar); the default sizes are pytorch/examples' VAE (784-400-20)."""

    def __init__(self, in_shape: tuple[int, int, int], latent_dim: int, hidden_dim: int = 400):
        super().__init__()
        check_int("latent", latent_dim, 1)
        check_int("model.encoder.hidden_dim", hidden_dim, 1)
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(math.prod(in_shape), hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 2 * latent_dim)
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.net(x).chunk(2, dim=1)  # (B, D) each
        return mu, logvar


class MLPDecoder(nn.Module):
    """z -> hidden -> parameters of p(x|z) in the image's shape."""

    def __init__(
        self, out_shape: tuple[int, int, int], latent_dim: int, hidden_dim: int = 400, params_per_pixel: int = 1
    ):
        super().__init__()
        check_int("latent", latent_dim, 1)
        check_int("model.decoder.hidden_dim", hidden_dim, 1)
        channels, height, width = out_shape
        self.out_shape = (channels * params_per_pixel, height, width)
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, math.prod(self.out_shape))
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, *self.out_shape)  # (B, C * params_per_pixel, H, W)


def _check_divisible(in_shape: tuple[int, int, int]) -> tuple[int, int]:
    """Two stride-2 convolutions halve the image twice: height and width must divide by 4."""
    _, height, width = in_shape
    if height % 4 or width % 4:
        raise ConfigError(f"model=conv needs image sides divisible by 4, got {height}x{width}: use data.image_size")
    return height // 4, width // 4


class ConvEncoder(nn.Module):
    """Two stride-2 convolutions (28x28 -> 7x7, 32x32 -> 8x8), then a linear map to (mu, logvar)."""

    def __init__(self, in_shape: tuple[int, int, int], latent_dim: int, channels: tuple[int, int] = (32, 64)):
        super().__init__()
        check_int("latent", latent_dim, 1)
        h, w = _check_divisible(in_shape)
        c1, c2 = channels
        self.net = nn.Sequential(
            nn.Conv2d(in_shape[0], c1, 4, stride=2, padding=1), nn.ReLU(),  # (B, c1, H/2, W/2)
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),  # (B, c2, H/4, W/4)
            nn.Flatten(), nn.Linear(c2 * h * w, 2 * latent_dim),
        )  # fmt: skip

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.net(x).chunk(2, dim=1)  # (B, D) each
        return mu, logvar


class ConvDecoder(nn.Module):
    """The encoder's mirror: a linear map to a (H/4, W/4) feature map, then two stride-2 transposed convs."""

    def __init__(
        self,
        out_shape: tuple[int, int, int],
        latent_dim: int,
        channels: tuple[int, int] = (32, 64),
        params_per_pixel: int = 1,
    ):
        super().__init__()
        check_int("latent", latent_dim, 1)
        h, w = _check_divisible(out_shape)
        c1, c2 = channels
        self.net = nn.Sequential(
            nn.Linear(latent_dim, c2 * h * w), nn.ReLU(),
            nn.Unflatten(1, (c2, h, w)),  # (B, c2, H/4, W/4)
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.ReLU(),  # (B, c1, H/2, W/2)
            nn.ConvTranspose2d(c1, out_shape[0] * params_per_pixel, 4, stride=2, padding=1),  # (B, C*k, H, W)
        )  # fmt: skip

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


def split_params(params: Tensor, params_per_pixel: int) -> tuple[Tensor, ...]:
    """Split the decoder's (B, C * k, H, W) output into k maps of (B, C, H, W)."""
    return torch.chunk(params, params_per_pixel, dim=1)

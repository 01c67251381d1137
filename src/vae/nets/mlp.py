"""Fully connected nets of any depth, width and activation.

`hidden=[400]` with ReLU is pytorch/examples' VAE (784-400-20); `hidden=[200, 200]` with tanh is
Burda et al. 2016's one-layer model (784-200-200-50). The decoder mirrors the encoder.
"""

import math

from torch import Tensor, nn

from vae.errors import ConfigError, check_int

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU, "softplus": nn.Softplus}


def mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """Linear layers between consecutive `sizes`, each followed by the activation."""
    if activation not in ACTIVATIONS:
        raise ConfigError(f"model.activation={activation} is unknown: choose one of {', '.join(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(n_in, n_out), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


def check_hidden(hidden) -> list[int]:
    hidden = list(hidden)
    if not hidden:
        raise ConfigError("model.hidden=[] is invalid: give at least one layer width, e.g. model.hidden=[400]")
    return [check_int("model.hidden", width, 1) for width in hidden]


class MLPEncoder(nn.Module):
    """x -> flatten -> hidden layers -> features (B, hidden[-1])."""

    def __init__(self, in_shape: tuple[int, int, int], hidden: list[int] = (400,), activation: str = "relu"):
        super().__init__()
        hidden = check_hidden(hidden)
        self.out_features = hidden[-1]
        self.net = nn.Sequential(nn.Flatten(), mlp([math.prod(in_shape), *hidden], activation))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class MLPDecoder(nn.Module):
    """z -> the hidden layers in reverse -> parameters of p(x|z) in the image's shape."""

    def __init__(
        self,
        out_shape: tuple[int, int, int],
        latent_dim: int,
        hidden: list[int] = (400,),
        activation: str = "relu",
        params_per_pixel: int = 1,
    ):
        super().__init__()
        check_int("latent", latent_dim, 1)
        hidden = check_hidden(hidden)[::-1]
        channels, height, width = out_shape
        self.out_shape = (channels * params_per_pixel, height, width)
        self.net = nn.Sequential(mlp([latent_dim, *hidden], activation), nn.Linear(hidden[-1], math.prod(self.out_shape)))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, *self.out_shape)  # (N, C * params_per_pixel, H, W)

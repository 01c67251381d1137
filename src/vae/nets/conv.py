"""A small conv net: two stride-2 convolutions down, two transposed convolutions up (any side divisible by 4)."""

from torch import Tensor, nn

from vae.errors import ConfigError, check_int


def check_channels(channels) -> tuple[int, int]:
    if len(channels) != 2:
        raise ConfigError(f"model.channels={list(channels)} is invalid: give two widths, e.g. [32, 64]")
    return tuple(check_int("model.channels", c, 1) for c in channels)


def _check_divisible(in_shape: tuple[int, int, int]) -> tuple[int, int]:
    """Two stride-2 convolutions halve the image twice: height and width must divide by 4."""
    _, height, width = in_shape
    if height % 4 or width % 4:
        raise ConfigError(f"model=conv needs image sides divisible by 4, got {height}x{width}: use data.image_size")
    return height // 4, width // 4


class ConvEncoder(nn.Module):
    """Two stride-2 convolutions (28x28 -> 7x7, 32x32 -> 8x8), flattened to features (B, c2 * H/4 * W/4)."""

    def __init__(self, in_shape: tuple[int, int, int], channels: tuple[int, int] = (32, 64)):
        super().__init__()
        h, w = _check_divisible(in_shape)
        c1, c2 = check_channels(channels)
        self.out_features = c2 * h * w
        self.net = nn.Sequential(
            nn.Conv2d(in_shape[0], c1, 4, stride=2, padding=1), nn.ReLU(),  # (B, c1, H/2, W/2)
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),  # (B, c2, H/4, W/4)
            nn.Flatten(),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


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
        c1, c2 = check_channels(channels)
        self.net = nn.Sequential(
            nn.Linear(latent_dim, c2 * h * w), nn.ReLU(),
            nn.Unflatten(1, (c2, h, w)),  # (B, c2, H/4, W/4)
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.ReLU(),  # (B, c1, H/2, W/2)
            nn.ConvTranspose2d(c1, out_shape[0] * params_per_pixel, 4, stride=2, padding=1),  # (B, C*k, H, W)
        )  # fmt: skip

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)

"""Residual conv nets for small colour images (He et al. 2016 blocks, as in the VAE encoders of
Kingma et al. 2016 and VDVAE at a much smaller size): three downsamplings, 32x32 -> 4x4.

Each stage is a stride-2 convolution followed by `blocks` residual blocks; the decoder mirrors
it with stride-2 transposed convolutions. Sides must divide by 8.
"""

from torch import Tensor, nn

from vae.errors import ConfigError, check_int


class ResidualBlock(nn.Module):
    """x + conv(act(conv(act(x)))), 3x3 convolutions, shape preserved."""

    def __init__(self, channels: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


def check_resnet(shape: tuple[int, int, int], channels, blocks: int) -> tuple[list[int], int, int]:
    _, height, width = shape
    if height % 8 or width % 8:
        raise ConfigError(f"model=resnet needs image sides divisible by 8, got {height}x{width}: use data.image_size")
    if len(channels) != 3:
        raise ConfigError(f"model.channels={list(channels)} is invalid: give three widths, e.g. [32, 64, 128]")
    check_int("model.blocks", blocks, 0)
    return [check_int("model.channels", c, 1) for c in channels], height // 8, width // 8


class ResNetEncoder(nn.Module):
    """x (B, C, H, W) -> features (B, c3 * H/8 * W/8)."""

    def __init__(self, in_shape: tuple[int, int, int], channels: list[int] = (32, 64, 128), blocks: int = 1):
        super().__init__()
        channels, h, w = check_resnet(in_shape, channels, blocks)
        layers: list[nn.Module] = []
        c_in = in_shape[0]
        for c in channels:  # (B, c, H/2^i, W/2^i)
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), *(ResidualBlock(c) for _ in range(blocks))]
            c_in = c
        self.net = nn.Sequential(*layers, nn.SiLU(), nn.Flatten())
        self.out_features = channels[-1] * h * w

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ResNetDecoder(nn.Module):
    """z (N, D) -> a (c3, H/8, W/8) map -> three upsampling stages -> (N, C * params_per_pixel, H, W)."""

    def __init__(
        self,
        out_shape: tuple[int, int, int],
        latent_dim: int,
        channels: list[int] = (32, 64, 128),
        blocks: int = 1,
        params_per_pixel: int = 1,
    ):
        super().__init__()
        check_int("latent", latent_dim, 1)
        channels, h, w = check_resnet(out_shape, channels, blocks)
        widths = channels[::-1]  # c3, c2, c1
        layers: list[nn.Module] = [nn.Linear(latent_dim, widths[0] * h * w), nn.Unflatten(1, (widths[0], h, w))]
        for c_in, c_out in zip(widths, [*widths[1:], widths[-1]]):
            layers += [*(ResidualBlock(c_in) for _ in range(blocks)), nn.SiLU()]
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)]
        layers += [nn.SiLU(), nn.Conv2d(widths[-1], out_shape[0] * params_per_pixel, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)

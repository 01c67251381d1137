"""Generated shapes with known factors, in the spirit of dSprites (Matthey et al. 2017): `data=shapes`.

64x64 binary images of a square, an ellipse and a heart at every combination of scale, orientation and
x/y position, rendered here with torch at first use (a few seconds) and cached under the data root,
keyed by the grid. The labels are the factor indices (N, 5): shape, scale, orientation, x, y, so the
disentanglement metrics (vae.metrics.disentanglement) know what made each image. The grid is
configurable; a small one makes tests fast. This is not dSprites: its sprites, grid and sizes differ,
so its scores are not comparable to published dSprites scores.
"""

import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vae.data import ImageData
from vae.errors import ConfigError, check_int
from vae.files import atomic_write

SIDE = 64  # image side in pixels
SHAPES = ("square", "ellipse", "heart")
FACTORS = ("shape", "scale", "orientation", "x", "y")
HALF_SIZE = 0.16  # half the side of the largest sprite, as a fraction of the image side (about 10 pixels)
MARGIN = 0.23  # sprite centres stay this far from the border: a rotated largest square stays inside
BYTES_PER_IMAGE = 2 * (SIDE * SIDE + len(FACTORS) * 8)  # uint8 pixels and int64 factors, held twice: the grid and its splits


def factor_values(scales: int, orientations: int, positions: int) -> dict[str, Tensor]:
    """The value behind each index of each continuous factor: scale in [0.5, 1] (dSprites' range), orientation
    in [0, 2 pi) and centre positions in [MARGIN, 1 - MARGIN] of the image side."""
    return {
        "scale": torch.linspace(0.5, 1.0, scales) if scales > 1 else torch.ones(1),
        "orientation": torch.arange(orientations) * (2 * math.pi / orientations),
        "position": torch.linspace(MARGIN, 1 - MARGIN, positions) if positions > 1 else torch.full((1,), 0.5),
    }


def factor_grid(sizes: tuple[int, ...]) -> Tensor:
    """Every combination of factor indices, the last factor fastest. sizes (K,) -> (prod(sizes), K) int64"""
    axes = torch.meshgrid(*(torch.arange(n) for n in sizes), indexing="ij")
    return torch.stack([axis.flatten() for axis in axes], dim=1)


def inside(shape: int, u: Tensor, v: Tensor) -> Tensor:
    """Whether sprite coordinates (u, v) (about [-1, 1], v up) fall inside sprite `shape`. u, v: (B, H, W) -> (B, H, W)"""
    if shape == 0:  # square
        return torch.maximum(u.abs(), v.abs()) <= 1
    if shape == 1:  # ellipse, twice as wide as high, like dSprites'
        return u.pow(2) + (2 * v).pow(2) <= 1
    x, y = 1.15 * u, 1.15 * v + 0.15  # the heart curve (x^2 + y^2 - 1)^3 = x^2 y^3, centred and scaled to [-1, 1]
    return (x.pow(2) + y.pow(2) - 1).pow(3) <= x.pow(2) * y.pow(3)


def render(factors: Tensor, scales: int, orientations: int, positions: int, chunk: int = 1024) -> Tensor:
    """Binary images of the sprites with these factor indices. factors (N, 5) -> (N, 1, 64, 64) uint8 in {0, 255}"""
    values = factor_values(scales, orientations, positions)
    centres = (torch.arange(SIDE) + 0.5) / SIDE  # pixel centres in [0, 1]
    row, col = torch.meshgrid(centres, centres, indexing="ij")  # (H, W): row grows downwards
    images = torch.empty(len(factors), 1, SIDE, SIDE, dtype=torch.uint8)
    for start in range(0, len(factors), chunk):
        f = factors[start : start + chunk]
        size = (HALF_SIZE * values["scale"][f[:, 1]]).view(-1, 1, 1)
        angle = values["orientation"][f[:, 2]].view(-1, 1, 1)
        dx = (col - values["position"][f[:, 3]].view(-1, 1, 1)) / size  # (B, H, W)
        dy = (values["position"][f[:, 4]].view(-1, 1, 1) - row) / size  # y up
        cos, sin = angle.cos(), angle.sin()
        u, v = cos * dx + sin * dy, -sin * dx + cos * dy  # rotate the pixel grid by -angle: the sprite by +angle
        for shape in f[:, 0].unique().tolist():
            mine = f[:, 0] == shape
            images[start : start + chunk, 0][mine] = inside(shape, u[mine], v[mine]).to(torch.uint8) * 255
    return images


def load_shapes(root: str, shapes: int, scales: int, orientations: int, positions: int) -> tuple[Tensor, Tensor]:
    """(images (N, 1, 64, 64) uint8, factor indices (N, 5)) of the whole grid, rendered once and cached under
    `root/shapes/` as bit-packed numpy arrays (read back without pickle)."""
    sizes = (shapes, scales, orientations, positions, positions)
    factors = factor_grid(sizes)
    path = Path(root) / "shapes" / f"shapes-{'x'.join(map(str, sizes))}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as cached:
            bits = np.unpackbits(cached["bits"], count=len(factors) * SIDE * SIDE)
        images = torch.from_numpy(bits.reshape(len(factors), 1, SIDE, SIDE) * np.uint8(255))
        return images, factors
    images = render(factors, scales, orientations, positions)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"data.root={root} cannot hold the rendered shapes ({err.strerror}): choose another") from None
    with atomic_write(path, "wb") as file:
        np.savez(file, bits=np.packbits(images.numpy() > 0))
    return images, factors


def memory_size() -> int | None:
    """This machine's physical memory in bytes, where the system says (Linux, macOS)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def bytes_text(size: float) -> str:
    """4.96e15 -> "5.0 PB"."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000:
            return f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} PB"


def check_fits(sizes: tuple[int, ...], memory: int | None) -> None:
    """Refuse a grid whose images cannot fit in `memory` bytes, naming the option that makes it large,
    before anything is allocated. sizes: (shapes, scales, orientations, positions, positions)."""
    images = math.prod(sizes)
    need = images * BYTES_PER_IMAGE
    if memory is None or need <= memory:
        return
    options = {"data.positions": sizes[3] * sizes[4], "data.orientations": sizes[2], "data.scales": sizes[1]}
    largest = max(options, key=lambda name: options[name])
    value = sizes[3] if largest == "data.positions" else options[largest]
    raise ConfigError(
        f"{largest}={value} is too large: data=shapes would render {images:,} images "
        f"({' x '.join(map(str, sizes))}), which need about {bytes_text(need)} of memory and this machine has "
        f"{bytes_text(memory)}; lower {largest} (the default grid, 30,720 images, needs {bytes_text(30720 * BYTES_PER_IMAGE)})"
    )


class ShapesData(ImageData):
    """`data=shapes`: the rendered grid split into train/val/test like any in-memory set; labels are (N, 5)."""

    def __init__(
        self,
        root: str = "data",
        shapes: int = 3,
        scales: int = 4,
        orientations: int = 10,
        positions: int = 16,
        batch_size: int = 64,
        val_size: int | float = 0.05,
        test_size: int | float = 0.05,
        split_seed: int = 0,
        seed: int = 0,
    ):
        super().__init__("shapes", root, batch_size, val_size, test_size, split_seed=split_seed, seed=seed)
        self.shapes = check_int("data.shapes", shapes, 1, len(SHAPES))
        self.scales = check_int("data.scales", scales, 1)
        self.orientations = check_int("data.orientations", orientations, 1)
        self.positions = check_int("data.positions", positions, 1)
        check_fits(self.factor_sizes, memory_size())

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        """How many values each factor of FACTORS takes."""
        return (self.shapes, self.scales, self.orientations, self.positions, self.positions)

    def load(self) -> tuple[Tensor, Tensor]:
        return load_shapes(self.root, *self.factor_sizes[:4])

"""The generated shapes: every factor combination once, sprites where geometry puts them, rendered once and cached."""

import math

import pytest
import torch

from vae.errors import ConfigError
from vae.shapes import HALF_SIZE, SIDE, ShapesData, factor_grid, factor_values, render

GRID = dict(shapes=3, scales=2, orientations=4, positions=4)  # 384 images


def sprite(shape: int, scale: int = 1, orientation: int = 0, x: int = 2, y: int = 1) -> torch.Tensor:
    """One rendered sprite of the test grid as a (64, 64) bool mask."""
    return render(torch.tensor([[shape, scale, orientation, x, y]]), 2, 4, 4)[0, 0] > 0


def test_the_grid_holds_every_combination_once_with_factor_labels(tmp_path):
    data = ShapesData(root=str(tmp_path), **GRID, val_size=40, test_size=40)
    data.setup()
    images = torch.cat([data.splits[s][0] for s in ("train", "val", "test")])
    factors = torch.cat([data.splits[s][1] for s in ("train", "val", "test")])
    assert images.shape == (384, 1, SIDE, SIDE) and images.dtype == torch.uint8
    assert set(images.unique().tolist()) == {0, 255}  # binary
    assert factors.shape == (384, 5) and len(factors.unique(dim=0)) == 384
    assert factors.max(dim=0).values.tolist() == [2, 1, 3, 3, 3]
    assert [len(data.splits[s][0]) for s in ("train", "val", "test")] == [304, 40, 40]
    assert data.shape == (1, SIDE, SIDE)
    assert (images.flatten(1).sum(1) > 0).all()  # no empty picture
    x, y = next(iter(data.train_dataloader()))
    assert x.shape == (64, 1, SIDE, SIDE) and y.shape == (64, 5)


def test_images_match_their_labels_and_are_distinct():
    factors = factor_grid((3, 2, 4, 4, 4))
    images = render(factors, 2, 4, 4)
    assert torch.equal(images[17], render(factors[17:18], 2, 4, 4)[0])
    # distinct pictures, except where the sprite's symmetry makes rotations equal (square: 90 degrees, ellipse: 180)
    distinct = len(images.flatten(1).unique(dim=0))
    assert distinct == 2 * 4 * 4 * (1 + 2 + 4)  # scales x positions x (square, ellipse, heart orientations)


def test_sprites_have_the_area_centre_and_symmetry_geometry_gives():
    for scale_index, scale in enumerate(factor_values(2, 4, 4)["scale"].tolist()):
        r = HALF_SIZE * scale * SIDE  # half the square's side in pixels
        assert sprite(0, scale_index).sum() == pytest.approx(4 * r * r, rel=0.08)
        assert sprite(1, scale_index).sum() == pytest.approx(math.pi * r * r / 2, rel=0.08)  # semi-axes r and r/2
    position = factor_values(2, 4, 4)["position"]
    rows, cols = sprite(1).nonzero(as_tuple=True)
    assert (cols.float().mean() + 0.5) / SIDE == pytest.approx(float(position[2]), abs=0.5 / SIDE)  # x index 2
    assert (rows.float().mean() + 0.5) / SIDE == pytest.approx(float(position[1]), abs=0.5 / SIDE)  # y index 1
    assert torch.equal(sprite(0, orientation=0), sprite(0, orientation=1))  # a square turned by 90 degrees
    assert torch.equal(sprite(1, orientation=0), sprite(1, orientation=2))  # an ellipse turned by 180 degrees
    assert not torch.equal(sprite(1, orientation=0), sprite(1, orientation=1))
    assert not torch.equal(sprite(2, orientation=0), sprite(2, orientation=2))  # a heart upside down
    assert sprite(0, 0).sum() < sprite(0, 1).sum()


def test_rendered_once_then_read_from_the_cache(tmp_path):
    first = ShapesData(root=str(tmp_path), **GRID)
    first.setup()
    (cached,) = (tmp_path / "shapes").iterdir()
    stamp = cached.stat().st_mtime_ns
    second = ShapesData(root=str(tmp_path), **GRID)
    second.setup()
    assert cached.stat().st_mtime_ns == stamp
    assert torch.equal(first.splits["test"][0], second.splits["test"][0])
    assert torch.equal(first.splits["test"][1], second.splits["test"][1])
    ShapesData(root=str(tmp_path), **{**GRID, "scales": 3}).setup()  # another grid, another file
    assert len(list((tmp_path / "shapes").iterdir())) == 2


@pytest.mark.parametrize("key, value", [("shapes", 4), ("scales", 0), ("positions", 1.5)])
def test_a_bad_grid_is_one_line_naming_it(tmp_path, key, value):
    with pytest.raises(ConfigError, match=f"data.{key}={value}"):
        ShapesData(root=str(tmp_path), **{**GRID, key: value})


@pytest.mark.parametrize("key, value", [("positions", 100000), ("orientations", 10**9)])
def test_a_grid_too_large_for_memory_is_refused_before_anything_is_allocated(tmp_path, key, value):
    with pytest.raises(ConfigError, match=rf"^data.{key}={value} is too large: .* [TP]B of memory .*; lower data.{key} "):
        ShapesData(root=str(tmp_path), **{**GRID, key: value})
    assert not (tmp_path / "shapes").exists()


def test_the_memory_limit_is_what_the_grid_needs():
    from vae.shapes import BYTES_PER_IMAGE, check_fits

    sizes = (3, 4, 10, 16, 16)
    check_fits(sizes, memory=30720 * BYTES_PER_IMAGE)  # just fits
    with pytest.raises(ConfigError, match=r"data.positions=16 is too large: .* 30,720 images .* this machine has"):
        check_fits(sizes, memory=30720 * BYTES_PER_IMAGE - 1)

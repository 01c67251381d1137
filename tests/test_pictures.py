"""Pictures: the latent-space geometry, what each picture shows of a real model, the PNGs a training
run writes, and src/sample.py on its checkpoint."""

from pathlib import Path

import pytest
import torch
from PIL import Image
from torch.distributions import Normal

from conftest import TINY, WITH_PICTURES, make_config, run_script
from vae.build import build_system
from vae.figures import DPI, SCALE, figure_size
from vae.pictures import (
    code_scatter,
    draw_all,
    fixed_test_images,
    interpolation_codes,
    interpolations,
    manifold,
    manifold_codes,
    most_used_dimensions,
    prior_samples,
    reconstructions,
    traversal_codes,
    traversals,
)
from vae.system import VAE

ALL = {"reconstructions", "samples", "traversals", "interpolations", "manifold", "codes"}


def tiny_vae(latent_dim: int) -> VAE:
    torch.manual_seed(0)
    return build_system(make_config(Path("unused"), [f"latent={latent_dim}", "model.hidden=[32]"])).eval()


def tile(grid: torch.Tensor, row: int, col: int, size: int = 28, pad: int = 2) -> torch.Tensor:
    """One image out of a torchvision grid (padding 2)."""
    top, left = pad + row * (size + pad), pad + col * (size + pad)
    return grid[:, top : top + size, left : left + size]


def test_traversal_codes_move_one_dimension_per_row_over_the_prior_range():
    mu = torch.tensor([0.5, -1.0, 2.0])
    z = traversal_codes(mu, dims=3, steps=5).view(3, 5, 3)
    for d in range(3):
        torch.testing.assert_close(z[d, :, d], torch.linspace(-3, 3, 5))
        others = [i for i in range(3) if i != d]
        torch.testing.assert_close(z[d][:, others], mu[others].expand(5, 2))


def test_traversal_codes_follow_the_dimensions_given_in_their_order():
    mu = torch.tensor([0.5, -1.0, 2.0])
    z = traversal_codes(mu, dims=[2, 0], steps=5).view(2, 5, 3)
    torch.testing.assert_close(z[0, :, 2], torch.linspace(-3, 3, 5))
    torch.testing.assert_close(z[1, :, 0], torch.linspace(-3, 3, 5))
    torch.testing.assert_close(z[0, :, :2], mu[:2].expand(5, 2))


def test_most_used_dimensions_are_sorted_by_usage_highest_first():
    usage = torch.rand(12)
    chosen = most_used_dimensions(usage, 5)
    assert chosen == torch.argsort(usage, descending=True)[:5].tolist()
    assert most_used_dimensions(torch.zeros(4), 3) == [0, 1, 2]  # ties keep index order


def expected_pixels(grid: torch.Tensor, rows: bool, cols: bool) -> tuple[int, int]:
    """(width, height) of a labelled picture of `grid` (C, H, W), as PIL reports it."""
    width, height = figure_size(grid, rows, cols)
    return round(width * DPI), round(height * DPI)


def test_interpolation_codes_run_straight_between_the_ends():
    a, b = torch.randn(2, 4), torch.randn(2, 4)
    z = interpolation_codes(a, b, steps=5).view(2, 5, 4)
    torch.testing.assert_close(z[:, 0], a)
    torch.testing.assert_close(z[:, -1], b)
    torch.testing.assert_close(z[:, 2], (a + b) / 2)


def test_manifold_codes_are_evenly_spaced_prior_quantiles():
    z = manifold_codes(4).view(4, 4, 2)  # (row, column, dim)
    mass = Normal(0.0, 1.0).cdf(z)  # the prior probability left of each coordinate
    expected = (torch.arange(4) + 0.5) / 4
    torch.testing.assert_close(mass[0, :, 0], expected)  # z_1 rises along a row
    torch.testing.assert_close(mass[:, 0, 1], expected.flip(0))  # z_2 falls down a column, as on a plot


def test_a_traversal_of_a_dimension_the_decoder_ignores_is_a_constant_row():
    system = tiny_vae(3)
    with torch.no_grad():
        system.model.decoder.net[0][0].weight[:, 1] = 0  # the decoder ignores z_1
    x = torch.rand(1, 1, 28, 28)
    grid = traversals(system, x, 3, steps=5)
    assert not torch.allclose(tile(grid, 0, 0), tile(grid, 0, 4))
    for col in range(1, 5):
        torch.testing.assert_close(tile(grid, 1, col), tile(grid, 1, 0))


def test_interpolations_start_and_end_at_the_reconstructions():
    system = tiny_vae(3)
    x_a, x_b = torch.rand(2, 1, 28, 28), torch.rand(2, 1, 28, 28)
    grid = interpolations(system, x_a, x_b, steps=6)
    with torch.no_grad():
        ends_a, ends_b = system.decode(system.encode(x_a)), system.decode(system.encode(x_b))
    for row in range(2):
        torch.testing.assert_close(tile(grid, row, 0), ends_a[row].expand(3, 28, 28))
        torch.testing.assert_close(tile(grid, row, 5), ends_b[row].expand(3, 28, 28))


def test_only_a_2d_latent_space_gets_the_manifold_and_the_code_scatter():
    x, labels, z = torch.rand(30, 1, 28, 28), torch.arange(30) % 10, torch.randn(16, 2)
    system = tiny_vae(2)
    two = draw_all(system, x, labels, z)
    assert set(two) == ALL
    assert manifold(system).shape == (3, 20 * 28, 20 * 28)  # 20 x 20 tiles, no padding
    assert two["manifold"].shape[1:] == expected_pixels(manifold(system), True, True)[::-1]
    assert set(draw_all(tiny_vae(3), x, labels, torch.randn(16, 3))) == ALL - {"manifold", "codes"}
    assert set(draw_all(tiny_vae(2), None, None, z)) == {"samples", "manifold"}  # no test images: the prior only


def test_each_picture_is_labelled_at_a_readable_size():
    system, x, z = tiny_vae(16), torch.rand(30, 1, 28, 28), torch.randn(64, 16)
    pictures = draw_all(system, x, torch.arange(30) % 10, z, n_images=8, when="epoch 3, step 120")
    grids = {"reconstructions": (reconstructions(system, x[:8]), True, False), "samples": (prior_samples(system, z), False, False)}
    for name, (grid, rows, cols) in grids.items():
        assert pictures[name].shape[1:] == expected_pixels(grid, rows, cols)[::-1], name
        assert pictures[name].shape[2] >= SCALE * grid.shape[2]  # each digit shown at SCALE x its pixels
    # traversals: the 10 most used of 16 dimensions, 9 steps; interpolations: 4 pairs of 10 steps
    assert pictures["traversals"].shape[1:] == expected_pixels(torch.zeros(1, 10 * 30 + 2, 9 * 30 + 2), True, True)[::-1]
    assert pictures["interpolations"].shape[1:] == expected_pixels(torch.zeros(1, 4 * 30 + 2, 10 * 30 + 2), True, True)[::-1]
    for image in pictures.values():  # titled and labelled: dark text on the white margins
        assert image.min() >= 0 and image.max() <= 1 and (image[:, :20] < 0.5).any()


def test_the_dimensions_an_encoder_uses_most_come_first():
    system = tiny_vae(4)
    with torch.no_grad():  # the mean's rows of the last layer: z_3 varies most over x, then z_1; z_0, z_2 not at all
        system.model.posterior.head.weight[:4].mul_(torch.tensor([0.0, 1.0, 0.0, 5.0]).view(4, 1))
        system.model.posterior.head.bias[:4].zero_()
    from vae.metrics.latents import activity

    assert most_used_dimensions(activity(system.encode(torch.rand(40, 1, 28, 28))), 2) == [3, 1]


def test_code_scatter_colours_points_by_label():
    mu = torch.cat([torch.randn(200, 2) * 0.3 - 2, torch.randn(200, 2) * 0.3 + 2])
    image = code_scatter(mu, torch.cat([torch.zeros(200), torch.full((200,), 9.0)]))
    assert image.shape[0] == 3 and 0 <= image.min() and image.max() <= 1
    colours = {tuple(c) for c in (image * 255).round().to(torch.uint8).flatten(1).T.tolist()}
    assert (31, 119, 180) in colours and (23, 190, 207) in colours  # tab10's first and last colours


def test_the_fixed_test_images_are_the_first_of_the_test_split_with_their_labels(tmp_path):
    """Training's pictures, sample.py's and vae.draw_pictures' all take their test images from here."""
    from hydra.utils import instantiate

    data = instantiate(make_config(tmp_path, ["data.test_size=5"]).data)
    data.setup("test")
    images, labels = data.splits["test"]
    x, y = fixed_test_images(data, 3, torch.device("cpu"))
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    torch.testing.assert_close(x * 255, images[:3].float())
    assert torch.equal(y, labels[:3])
    x, y = fixed_test_images(data, 1000, torch.device("cpu"))  # more than the split holds
    assert len(x) == len(y) == 5


@pytest.mark.slow
def test_training_writes_every_picture_and_sample_py_draws_them_from_the_checkpoint(tmp_path):
    from vae.training import train

    overrides = [*TINY, *WITH_PICTURES, "latent=2", "callbacks.images.every_n_epochs=1", "nll_samples=2"]
    train(make_config(tmp_path, overrides))
    written = {path.stem for path in (tmp_path / "images").glob("*.png")}
    assert written == ALL | {f"{name}_epoch001" for name in ALL}
    with Image.open(tmp_path / "images" / "reconstructions.png") as picture:  # 8 inputs above 8 reconstructions
        assert picture.size == expected_pixels(torch.zeros(1, 2 * 30 + 2, 8 * 30 + 2), True, False)

    result = run_script("sample.py", f"ckpt_path={tmp_path / 'checkpoints' / 'best.ckpt'}", "n=16", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {path.stem for path in (tmp_path / "samples").glob("*.png")} == ALL
    with Image.open(tmp_path / "samples" / "samples.png") as picture:
        assert picture.size == expected_pixels(torch.zeros(1, 4 * 30 + 2, 4 * 30 + 2), False, False)  # n=16: 4 x 4


def test_traversals_rank_dimensions_by_their_kl_where_it_has_a_closed_form():
    from vae.metrics.latents import activity, kl_per_dimension
    from vae.pictures import dimension_usage

    x = torch.rand(16, 1, 28, 28)
    system = tiny_vae(4)
    usage, measure = dimension_usage(system, x, system.encode(x))
    assert measure == "KL" and usage.shape == (4,)
    torch.testing.assert_close(usage, kl_per_dimension(*system.model.base(x)).mean(0))
    mixture = build_system(make_config(Path("unused"), ["latent=4", "model.hidden=[32]", "prior=mog"])).eval()
    usage, measure = dimension_usage(mixture, x, mixture.encode(x))  # no per-dimension KL against a mixture
    assert measure == "var"
    torch.testing.assert_close(usage, activity(mixture.encode(x)))

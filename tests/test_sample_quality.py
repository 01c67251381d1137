"""The Fréchet distance against its closed form for Gaussians and scipy's matrix square root; improved
precision and recall against a brute-force nearest-neighbour count (scikit-learn)."""

import numpy as np
import pytest
import torch
from scipy.linalg import sqrtm
from sklearn.neighbors import NearestNeighbors

from vae.metrics.sample_quality import frechet_distance, precision_recall


def test_frechet_distance_matches_scipy_on_the_sample_statistics():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(400, 6, generator=g) @ torch.randn(6, 6, generator=g)
    fake = torch.randn(300, 6, generator=g) * 2 + 1
    r, f = real.double().numpy(), fake.double().numpy()
    s_r, s_f = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
    expected = ((r.mean(0) - f.mean(0)) ** 2).sum() + np.trace(s_r + s_f - 2 * sqrtm(s_r @ s_f).real)
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_of_large_gaussian_samples_nears_the_closed_form():
    g = torch.Generator().manual_seed(1)
    real = torch.randn(20000, 3, generator=g)  # N(0, I)
    fake = torch.randn(20000, 3, generator=g) * torch.tensor([1.0, 2.0, 3.0]) + torch.tensor([1.0, 0.0, 0.0])
    closed_form = 1.0 + sum((1 - s) ** 2 for s in (1.0, 2.0, 3.0))  # diagonal: |dmu|^2 + sum (sqrt(a) - sqrt(b))^2
    assert frechet_distance(real, fake) == pytest.approx(closed_form, rel=0.03)
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-6)


def brute_force(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    def covered(points, support):
        radius = NearestNeighbors(n_neighbors=k + 1).fit(support).kneighbors(support)[0][:, -1]
        distances = np.linalg.norm(points[:, None] - support[None], axis=2)
        return np.mean([(row <= radius).any() for row in distances])

    return covered(fake, real), covered(real, fake)


def test_precision_recall_match_brute_force_neighbours():
    g = torch.Generator().manual_seed(2)
    real, fake = torch.randn(300, 4, generator=g), torch.randn(200, 4, generator=g) * 1.5 + 0.5
    ours = precision_recall(real, fake, k=3)
    assert (ours["precision"], ours["recall"]) == pytest.approx(brute_force(real.numpy(), fake.numpy(), 3), abs=1e-9)
    assert 0.1 < ours["precision"] < ours["recall"] < 1  # a too-wide generator: more recall than precision


def test_precision_recall_see_same_sets_disjoint_sets_and_a_collapsed_generator():
    g = torch.Generator().manual_seed(3)
    real = torch.randn(500, 4, generator=g)
    assert precision_recall(real, real) == {"precision": 1.0, "recall": 1.0}
    assert precision_recall(real, real + 100) == {"precision": 0.0, "recall": 0.0}
    collapsed = precision_recall(real, 0.1 * torch.randn(500, 4, generator=g))  # good samples of one mode
    assert collapsed["precision"] > 0.9 and collapsed["recall"] < 0.3

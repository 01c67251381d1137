"""Disentanglement metrics on representations whose answer is known: the true factors score near 1, noise
near 0 (chance for the FactorVAE score), a rotation of the factors in between; the parts against independent
computations (a contingency table's mutual information, scipy's entropy)."""

import numpy as np
import pytest
from scipy.stats import entropy

from vae.metrics.disentanglement import dci, dci_scores, discretize, factor_vae_score, mig, mutual_information
from vae.shapes import factor_grid

SIZES = (3, 4, 6, 8, 8)  # a small shapes grid: shape, scale, orientation, x, y


@pytest.fixture(scope="module")
def representations():
    """(factors (N, 5), {name: codes (N, D)}): the standardised factors, plus two unused dimensions; pure
    noise; the factors rotated within pairs (scale with orientation by 30 degrees, x with y by 45)."""
    rng = np.random.default_rng(0)
    factors = factor_grid(SIZES).numpy()
    factors = factors[rng.permutation(len(factors))[:3000]]
    truth = (factors - factors.mean(0)) / factors.std(0)
    truth = np.concatenate([truth, 0.001 * rng.standard_normal((len(truth), 2))], axis=1)  # two collapsed dims
    rotated = truth.copy()
    for (a, b), angle in (((1, 2), np.pi / 6), ((3, 4), np.pi / 4)):
        c, s = np.cos(angle), np.sin(angle)
        rotated[:, a], rotated[:, b] = c * truth[:, a] - s * truth[:, b], s * truth[:, a] + c * truth[:, b]
    noise = rng.standard_normal(truth.shape)
    return factors, {"truth": truth, "rotated": rotated, "noise": noise}


def test_mutual_information_matches_a_contingency_table():
    rng = np.random.default_rng(1)
    v = rng.integers(0, 3, 500)
    z = np.where(rng.random(500) < 0.7, v, rng.integers(0, 3, 500))  # a noisy copy
    joint = np.histogram2d(z, v, bins=(3, 3))[0] / 500
    expected = (joint * np.log(joint / joint.sum(1, keepdims=True) / joint.sum(0, keepdims=True))).sum()
    assert mutual_information(z[:, None], v[:, None])[0, 0] == pytest.approx(expected, rel=1e-9)


def test_discretize_makes_equal_width_bins_over_the_range():
    codes = np.linspace(0, 1, 101)[:, None]
    bins = discretize(codes, bins=4)[:, 0]
    assert bins.min() == 0 and bins.max() == 3 and np.bincount(bins).tolist() == [25, 25, 25, 26]


def test_dci_scores_are_one_minus_normalised_entropies():
    rng = np.random.default_rng(2)
    importance = rng.random((6, 4))
    p = importance / importance.sum(1, keepdims=True)
    rho = importance.sum(1) / importance.sum()
    disentanglement = sum(rho[d] * (1 - entropy(p[d], base=4)) for d in range(6))
    completeness = np.mean([1 - entropy(importance[:, k], base=6) for k in range(4)])
    assert dci_scores(importance) == pytest.approx((disentanglement, completeness), rel=1e-6)
    assert dci_scores(np.eye(4)) == pytest.approx((1.0, 1.0), abs=1e-6)
    assert dci_scores(np.ones((4, 4))) == pytest.approx((0.0, 0.0), abs=1e-6)


def test_mig_is_near_one_for_the_factors_near_zero_for_noise_between_for_a_rotation(representations):
    factors, codes = representations
    scores = {name: mig(z, factors) for name, z in codes.items()}
    assert scores["truth"] > 0.95 and scores["noise"] < 0.05
    assert scores["noise"] + 0.1 < scores["rotated"] < scores["truth"] - 0.1


def test_dci_is_near_one_for_the_factors_near_zero_for_noise_between_for_a_rotation(representations):
    factors, codes = representations
    scores = {name: dci(z, factors) for name, z in codes.items()}
    for part in ("dci_disentanglement", "dci_completeness", "dci_informativeness"):
        assert scores["truth"][part] > 0.9 and scores["noise"][part] < 0.1, part
    for part in ("dci_disentanglement", "dci_completeness"):  # the rotation keeps all the information
        assert scores["noise"][part] + 0.1 < scores["rotated"][part] < scores["truth"][part] - 0.1, part
    assert scores["rotated"]["dci_informativeness"] > 0.9


def test_factor_vae_score_is_one_for_the_factors_chance_for_noise_between_for_a_rotation(representations):
    factors, codes = representations
    scores = {name: factor_vae_score(z, factors, n_train=300, n_eval=300) for name, z in codes.items()}
    chance = 1 / factors.shape[1]
    assert scores["truth"] == 1.0
    assert scores["noise"] < chance + 0.1
    assert scores["noise"] + 0.1 < scores["rotated"] < scores["truth"]


def test_a_factor_with_one_value_is_left_out():
    factors = factor_grid((1, 4, 4)).numpy()  # one shape only
    codes = factors[:, 1:].astype(float)
    assert mig(codes, factors) > 0.95 and factor_vae_score(codes, factors, n_train=100, n_eval=100) == 1.0

"""The feature net of the sample-quality metrics, trained for real on mnist5k: it knows the digits, the test split
scores near 0 against real digits and far from noise, and it is trained once and then read from its cache."""

import pytest
import torch

from vae.data import ImageData
from vae.metrics.features import cache_path, feature_net, features_of
from vae.metrics.sample_quality import frechet_distance, precision_recall

pytestmark = pytest.mark.slow  # every test here needs the feature net trained (500 steps)

CONFIG = {"_target_": "vae.data.ImageData", "source": "mnist5k", "val_size": 500, "test_size": 500, "seed": 1}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("features")
    data = ImageData(val_size=500, test_size=500)
    data.setup()
    net, accuracy = feature_net(data.splits, CONFIG, root, torch.device("cpu"), steps=300)
    return data, net, accuracy, root


def test_the_feature_net_knows_the_digits(trained):
    _, _, accuracy, _ = trained
    assert accuracy > 0.8  # test accuracy on digits it never saw


def test_real_digits_score_near_zero_and_noise_far_away(trained):
    data, net, _, _ = trained
    test, train = data.splits["test"][0], data.splits["train"][0]
    real, other = features_of(net, test), features_of(net, train[: len(test)])
    noise = features_of(net, torch.rand(len(test), *test.shape[1:]))
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-3)
    near, far = frechet_distance(real, other), frechet_distance(real, noise)
    assert near < 0.05 * far
    same = precision_recall(real, other)
    assert same["precision"] > 0.7 and same["recall"] > 0.7
    noisy = precision_recall(real, noise)
    assert noisy["recall"] < 0.05 and noisy["precision"] < same["precision"] - 0.5


def test_trained_once_then_read_from_the_cache(trained):
    data, net, accuracy, root = trained
    path = cache_path(CONFIG, root)
    stamp = path.stat().st_mtime_ns
    again, cached_accuracy = feature_net(data.splits, {**CONFIG, "seed": 7, "batch_size": 32}, root, torch.device("cpu"))
    assert path.stat().st_mtime_ns == stamp and cached_accuracy == accuracy  # the run seed does not change the data
    x = data.splits["test"][0][:16]
    assert torch.equal(features_of(again, x), features_of(net, x))
    assert cache_path({**CONFIG, "test_size": 400}, root) != path  # another split, another net

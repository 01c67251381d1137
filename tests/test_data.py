"""Data: the embedded default set, torchvision's own loaders on real files, image folders, batching."""

import pytest
import torch

from conftest import write_idx_set, write_image_folder
from vae.batches import EpochPermutation, TensorBatches
from vae.data import ImageData
from vae.errors import ConfigError
from vae.image_sources import load_mnist5k


def test_mnist5k_is_5000_real_digits_split_and_shuffled():
    images, labels = load_mnist5k()
    assert images.shape == (5000, 1, 28, 28) and images.dtype == torch.uint8
    assert labels.bincount().min() > 400  # all ten digits
    data = ImageData(source="mnist5k", val_size=500, test_size=500)
    data.setup()
    train_x, train_y = data.splits["train"]
    assert [len(data.splits[s][0]) for s in ("train", "val", "test")] == [4000, 500, 500]
    assert not torch.equal(train_y, train_y.sort().values)  # shuffled, not sorted by label as shipped
    x, _ = next(iter(data.train_dataloader()))
    assert x.shape == (128, 1, 28, 28) and x.dtype == torch.float32 and 0 <= x.min() and x.max() == 1


def test_split_is_the_same_whatever_the_run_seed():
    a, b = ImageData(seed=1), ImageData(seed=2)
    a.setup(), b.setup()
    assert torch.equal(a.splits["test"][0], b.splits["test"][0])


@pytest.mark.parametrize("source, class_name", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST"), ("kmnist", "KMNIST")])
def test_torchvision_sets_load_through_torchvision(tmp_path, source, class_name):
    write_idx_set(tmp_path, class_name, n_train=300, n_test=100)
    data = ImageData(source=source, root=str(tmp_path), val_size=50, download=False)
    data.prepare_data(), data.setup()
    assert [len(data.splits[s][0]) for s in ("train", "val", "test")] == [250, 50, 100]
    assert data.shape == (1, 28, 28)


def test_missing_torchvision_set_says_where_it_looked(tmp_path):
    data = ImageData(source="mnist", root=str(tmp_path), download=False)
    with pytest.raises(ConfigError, match=f"{tmp_path}.*MNIST.*data.download=true"):
        data.setup()


def test_image_folder_is_resized_to_colour_squares(tmp_path):
    write_image_folder(tmp_path, n_per_class=20, size=28)
    data = ImageData(source="folder", path=str(tmp_path), image_size=32, channels=3, val_size=0.1, test_size=0.1)
    data.setup()
    assert data.splits["train"][0].shape == (32, 3, 32, 32)
    assert sorted(data.splits["train"][1].unique().tolist()) == [0, 1]


def test_dynamic_binarisation_draws_fresh_pixels_each_epoch():
    data = ImageData(binarize=True, batch_size=64)
    data.setup()
    loader = data.train_dataloader()
    first, second = next(iter(loader))[0], next(iter(loader))[0]
    assert set(first.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(first, second)  # same images (same epoch order), a new draw
    assert set(data.splits["test"][0].unique().tolist()) <= {0, 255}  # one fixed draw for evaluation


def test_each_epoch_is_a_new_order_and_ranks_share_the_set():
    sampler = EpochPermutation(10, shuffle=True, seed=0)
    first = sampler.indices()
    sampler.set_epoch(1)
    assert sorted(first.tolist()) == list(range(10)) and not torch.equal(first, sampler.indices())
    shards = [EpochPermutation(10, shuffle=True, seed=0, rank=r, world_size=3).indices() for r in range(3)]
    assert all(len(s) == 4 for s in shards)
    assert set(torch.cat(shards).tolist()) == set(range(10))


def test_tensor_batches_slice_the_whole_set_once():
    images, labels = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1), torch.arange(10)
    batches = TensorBatches(images, labels, batch_size=4, sampler=EpochPermutation(10, False, 0), binarize=False)
    assert len(batches) == 3
    assert torch.cat([y for _, y in batches]).tolist() == list(range(10))

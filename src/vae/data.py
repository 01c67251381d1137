"""Image data held in memory as uint8 tensors and batched by index slicing.

Every set (the embedded `mnist5k`, torchvision's MNIST, FashionMNIST, KMNIST, CIFAR10, an
image folder) becomes `(N, C, H, W)` uint8 images plus int64 labels, loaded once by the
real library code (`vae.image_sources`). A batch is one slice and one division (`vae.batches`): no
per-image PIL transform, no collation, no worker processes; on a GPU the tensors live on the device.

`DatasetData` (data=dataset) is the other way in: a torch `Dataset` of your own, named by `_target_`, split
by index and read in batches by DataLoader workers, so a set on disk never has to fit in memory. Both
are a `Data`: what training, evaluation and the pictures rely on (a LightningDataModule of your own
can subclass it too).
"""

from collections.abc import Iterable
from pathlib import Path

import lightning as L
import torch
from torch import Tensor

from vae.batches import EpochPermutation, TensorBatches
from vae.errors import ConfigError, check_int
from vae.image_sources import SOURCES, load_folder, load_mnist5k, load_torchvision


def split(images: Tensor, labels: Tensor, sizes: list[int], seed: int) -> list[tuple[Tensor, Tensor]]:
    """Shuffle with a fixed seed, then cut into consecutive parts of the given sizes."""
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    return [(images[part], labels[part]) for part in order.split(sizes)]


class Data(L.LightningDataModule):
    """What callers may rely on in a data module: the image shape, the label count, the split sizes, the first
    images of a split, and a split's batches for evaluation. `in_memory`: the splits are tensors in `splits`
    (what the metrics of metrics=[...] need); `batch_size` is the batch of training and evaluation."""

    in_memory = False
    batch_size: int
    root: str = "data"

    @property
    def shape(self) -> tuple[int, int, int]:
        raise NotImplementedError

    @property
    def num_classes(self) -> int:
        return 0

    def split_size(self, split: str) -> int:
        raise NotImplementedError

    def first_images(self, split: str, n: int) -> tuple[Tensor, Tensor]:
        """The first n images of a split as floats in [0, 1] (n, C, H, W), with their labels (n,)."""
        raise NotImplementedError

    def eval_batches(self, split: str, device: torch.device, max_batches: int | None = None):
        """A whole split (every rank's share) as (x, y) batches on `device`, at most `max_batches` of them."""
        raise NotImplementedError

    def all_labels(self) -> Tensor | None:
        """Every label of every split, to check a conditional model's class count; None where reading them all
        would mean reading every image."""
        return None


class ImageData(Data):
    """Train/val/test splits of an in-memory image set; `shape` tells the model what to fit."""

    in_memory = True

    def __init__(
        self,
        source: str = "mnist5k",
        root: str = "data",
        batch_size: int = 128,
        val_size: int | float = 500,
        test_size: int | float = 500,
        binarize: bool = False,
        download: bool = True,
        path: str | None = None,
        image_size: int = 32,
        channels: int = 3,
        split_seed: int = 0,
        seed: int = 0,
    ):
        super().__init__()
        if source not in SOURCES:
            raise ConfigError(f"data.source={source} is unknown: choose one of {', '.join(SOURCES)}")
        self.source, self.root, self.download, self.path = source, root, download, path
        self.batch_size = check_int("data.batch_size", batch_size, 1)
        self.val_size = check_size("data.val_size", val_size)
        self.test_size = check_size("data.test_size", test_size)
        self.binarize = binarize
        self.image_size = check_int("data.image_size", image_size, 4)
        if channels not in (1, 3):
            raise ConfigError(f"data.channels={channels} is invalid: it must be 1 (grey) or 3 (colour)")
        self.channels, self.split_seed, self.seed = channels, split_seed, seed
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image, known from the config before any data is loaded."""
        return SOURCES[self.source][1] or (self.channels, self.image_size, self.image_size)

    @property
    def num_classes(self) -> int:
        """How many labels: ten for the named sets, the class folders of an image folder (before loading images)."""
        if self.source != "folder":
            return 10
        if not self.path or not Path(self.path).is_dir():
            self._folder_args()  # the same one-line errors as loading
            raise ConfigError(f"data.path={self.path} is not a folder: give a folder laid out as <path>/<class>/<image>")
        return len([entry for entry in Path(self.path).iterdir() if entry.is_dir()])

    def prepare_data(self) -> None:
        """Download once (rank zero only) where the set is missing."""
        if SOURCES[self.source][0] and self.download:
            for train in (True, False):
                load_torchvision(self.source, self.root, train, download=True)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        if SOURCES[self.source][0]:
            train = load_torchvision(self.source, self.root, train=True, download=False)
            test = load_torchvision(self.source, self.root, train=False, download=False)
            n_val = count(self.val_size, len(train[0]))
            train, val = split(*train, [len(train[0]) - n_val, n_val], self.split_seed)
        else:
            images, labels = self.load()
            n_val, n_test = count(self.val_size, len(images)), count(self.test_size, len(images))
            if len(images) - n_val - n_test < 1:
                raise ConfigError(f"data has {len(images)} images, too few for data.val_size + data.test_size + 1")
            train, val, test = split(images, labels, [len(images) - n_val - n_test, n_val, n_test], self.split_seed)
        if self.binarize:  # evaluate on one fixed binarisation, train on fresh draws
            generator = torch.Generator().manual_seed(self.split_seed)
            val, test = (fixed_binarisation(*part, generator) for part in (val, test))
        device = self.trainer.strategy.root_device if self.trainer else torch.device("cpu")
        if device.type != "cpu":  # batches are then sliced on the GPU, no copy per step
            train, val, test = ((x.to(device), y.to(device)) for x, y in (train, val, test))
        self.splits = {"train": train, "val": val, "test": test}

    def load(self) -> tuple[Tensor, Tensor]:
        """The whole set, for sources without a split of their own: (N, C, H, W) uint8 images and labels."""
        if self.source == "folder":
            return load_folder(*self._folder_args())
        if self.source == "shapes":
            raise ConfigError("data.source=shapes is rendered by data=shapes (vae.shapes.ShapesData)")
        return load_mnist5k()

    def _folder_args(self) -> tuple[str, int, int]:
        if not self.path:
            raise ConfigError("data=folder needs data.path=<folder of images>")
        return self.path, self.image_size, self.channels

    def _batches(self, split_name: str, shuffle: bool, binarize: bool) -> TensorBatches:
        images, labels = self.splits[split_name]
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        sampler = EpochPermutation(len(images), shuffle, self.seed, rank, world)
        return TensorBatches(images, labels, self.batch_size, sampler, binarize)

    def train_dataloader(self) -> TensorBatches:
        return self._batches("train", shuffle=True, binarize=self.binarize)

    def val_dataloader(self) -> TensorBatches:
        return self._batches("val", shuffle=False, binarize=False)

    def test_dataloader(self) -> TensorBatches:
        return self._batches("test", shuffle=False, binarize=False)

    def split_size(self, split: str) -> int:
        self.setup(split)
        return len(self.splits[split][0])

    def first_images(self, split: str, n: int) -> tuple[Tensor, Tensor]:
        self.setup(split)
        images, labels = self.splits[split]
        return images[:n].float() / 255, labels[:n]

    def eval_batches(self, split: str, device: torch.device, max_batches: int | None = None):
        self.setup(split)
        images, labels = self.splits[split]
        order = EpochPermutation(len(images), shuffle=False, seed=0)  # one rank: all of the split
        for i, (x, y) in enumerate(TensorBatches(images, labels, self.batch_size, order, binarize=False)):
            if max_batches is not None and i >= max_batches:
                return
            yield x.to(device), y.to(device)

    def all_labels(self) -> Tensor:
        return torch.cat([y for _, y in self.splits.values()])


class ImageItems(torch.utils.data.Dataset):
    """A user's dataset, item by item, as (image float32 (C, H, W) in [0, 1], label int): an item is an image
    (uint8 counts as pixels / 255) or an (image, label) pair; an unlabelled image gets label 0."""

    def __init__(self, items):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        item = self.items[index]
        image, label = item[:2] if isinstance(item, (tuple, list)) else (item, 0)
        image = torch.as_tensor(image)
        image = image.float() / 255 if image.dtype == torch.uint8 else image.float()
        return image, int(label)


class DatasetData(Data):
    """`data=dataset`: your own `torch.utils.data.Dataset` (`data.dataset` holds its `_target_` and arguments),
    split by index into train/val/test (`val_size`, `test_size`: counts or fractions, a fixed seed) and read in
    batches by `num_workers` DataLoader worker processes: only the batches in flight are in memory.

    Each item is an image (C, H, W), uint8 or floats in [0, 1], or an (image, label) pair; `num_classes` is
    how many labels there are (family=cvae), 0 for none.
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 128,
        val_size: int | float = 0.1,
        test_size: int | float = 0.1,
        num_workers: int = 2,
        num_classes: int = 0,
        split_seed: int = 0,
        seed: int = 0,
    ):
        super().__init__()
        if not isinstance(dataset, torch.utils.data.Dataset):
            raise ConfigError(
                f"data.dataset is a {type(dataset).__name__}, not a torch.utils.data.Dataset: give "
                "data.dataset._target_=<your Dataset class> and its arguments"
            )
        self.dataset = dataset
        self.batch_size = check_int("data.batch_size", batch_size, 1)
        self.val_size = check_size("data.val_size", val_size)
        self.test_size = check_size("data.test_size", test_size)
        self.num_workers = check_int("data.num_workers", num_workers, 0)
        self.classes = check_int("data.num_classes", num_classes, 0)
        self.split_seed, self.seed = split_seed, seed
        self.parts: dict[str, torch.utils.data.Dataset] = {}

    @property
    def shape(self) -> tuple[int, int, int]:
        image, _ = ImageItems(self.dataset)[0]
        if image.dim() != 3:
            raise ConfigError(f"data.dataset gives images of shape {tuple(image.shape)}: each must be (C, H, W)")
        return tuple(image.shape)

    @property
    def num_classes(self) -> int:
        return self.classes

    def setup(self, stage: str | None = None) -> None:
        if self.parts:
            return
        total = len(self.dataset)
        n_val, n_test = count(self.val_size, total), count(self.test_size, total)
        if total - n_val - n_test < 1:
            raise ConfigError(f"data.dataset has {total} items, too few for data.val_size + data.test_size + 1")
        generator = torch.Generator().manual_seed(self.split_seed)
        parts = torch.utils.data.random_split(ImageItems(self.dataset), [total - n_val - n_test, n_val, n_test], generator)
        self.parts = dict(zip(("train", "val", "test"), parts))

    def loader(self, split: str, shuffle: bool = False) -> torch.utils.data.DataLoader:
        self.setup(split)
        generator = torch.Generator().manual_seed(self.seed)
        return torch.utils.data.DataLoader(
            self.parts[split], batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0, generator=generator,
        )  # fmt: skip

    def train_dataloader(self):
        return self.loader("train", shuffle=True)

    def val_dataloader(self):
        return self.loader("val")

    def test_dataloader(self):
        return self.loader("test")

    def split_size(self, split: str) -> int:
        self.setup(split)
        return len(self.parts[split])

    def first_images(self, split: str, n: int) -> tuple[Tensor, Tensor]:
        self.setup(split)
        part = self.parts[split]
        items = [part[i] for i in range(min(n, len(part)))]
        return torch.stack([image for image, _ in items]), torch.tensor([label for _, label in items])

    def eval_batches(self, split: str, device: torch.device, max_batches: int | None = None):
        for i, (x, y) in enumerate(self.loader(split)):
            if max_batches is not None and i >= max_batches:
                return
            yield x.to(device), y.to(device)


def check_size(name: str, value: object) -> int | float:
    """A split size: a count >= 1, or a fraction of the set in (0, 1)."""
    if isinstance(value, float) and 0 < value < 1:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value} is invalid: give a count (an integer >= 1) or a fraction of the set in (0, 1)")
    return value


def count(size: int | float, total: int) -> int:
    """A split size as a number of images; a fraction keeps at least one."""
    return max(1, round(size * total)) if isinstance(size, float) else size


def fixed_binarisation(images: Tensor, labels: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """One Bernoulli draw of each pixel, stored back as 0 or 255 so batches scale it to {0, 1}."""
    return torch.bernoulli(images.float() / 255, generator=generator).to(torch.uint8) * 255, labels


def split_batches(datamodule, split: str, device: torch.device, max_batches: int | None = None) -> Iterable[tuple[Tensor, Tensor]]:
    """A whole split (every rank's share) as (x, y) batches on `device`, at most `max_batches` of them (`Data.eval_batches`)."""
    return datamodule.eval_batches(split, device, max_batches)

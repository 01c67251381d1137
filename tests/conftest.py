"""Shared helpers: compose the real config the way `src/train.py` does."""

import os
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
TINY = ["debug=default"]  # conf/debug/default.yaml: a few real steps on the CPU, enough to run every code path
WITH_PICTURES = ["callbacks=default"]  # debug=default draws no pictures: this puts them back

os.environ.setdefault("WANDB_MODE", "offline")


def make_config(tmp_path: Path, overrides: list[str] = ()):
    """The composed train config with outputs under tmp_path (no Hydra run folder in-process)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=[f"paths.output_dir={tmp_path}", *overrides])


@pytest.fixture
def run_cli(tmp_path):
    """Run `src/train.py` in a subprocess from tmp_path; outputs land in tmp_path/outputs."""
    import subprocess

    def run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("WANDB_SERVICE", None)  # its own W&B service, not the one an in-process test started
        return subprocess.run(
            [sys.executable, str(ROOT / "src" / "train.py"), *args],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    return run


def write_idx_set(root: Path, class_name: str, n_train: int = 300, n_test: int = 100) -> Path:
    """Real digits from mnist5k written in MNIST's idx format under root/<class_name>/raw, as torchvision reads it."""
    import struct

    import torch

    from vae.image_sources import load_mnist5k

    images, labels = load_mnist5k()
    raw = root / class_name / "raw"
    raw.mkdir(parents=True)
    for prefix, n, offset in (("train", n_train, 0), ("t10k", n_test, 1)):
        part = torch.arange(n) * (5000 // n) + offset  # spread over all ten digits, which come sorted
        x, y = images[part, 0].numpy(), labels[part].numpy().astype("uint8")
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, len(x), 28, 28) + x.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, len(y)) + y.tobytes())
    return root


def write_image_folder(root: Path, n_per_class: int = 20, size: int = 28) -> Path:
    """Colour PNGs made from real digits, laid out as root/<class>/<image>.png for ImageFolder."""
    from PIL import Image

    from vae.image_sources import load_mnist5k

    images, labels = load_mnist5k()
    for digit in (3, 7):
        folder = root / f"digit{digit}"
        folder.mkdir(parents=True)
        for i, image in enumerate(images[labels == digit][:n_per_class]):
            grey = image[0].numpy()
            rgb = Image.merge("RGB", [Image.fromarray(grey), Image.fromarray(255 - grey), Image.fromarray(grey // 2)])
            rgb.resize((size, size)).save(folder / f"{i}.png")
    return root


def run_script(script: str, *args: str, cwd: Path, env: dict | None = None, timeout: int = 300):
    """Run a script under src/ in a subprocess from `cwd`, with `env` as its whole environment (default: ours).

    `run_script("eval.py", "ckpt_path=...", cwd=tmp_path)`; outputs land under cwd.
    """
    import subprocess

    env = {**os.environ, "PYTHONUNBUFFERED": "1"} if env is None else dict(env)
    env.pop("WANDB_SERVICE", None)  # its own W&B service, not the one an in-process test started
    return subprocess.run(
        [sys.executable, str(ROOT / "src" / script), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


class RandomImages(torch.utils.data.Dataset):
    """A user's own data set in the smallest form: `n` random uint8 images of `shape`, made one by one when asked for
    (`data=dataset data.dataset._target_=conftest.RandomImages`)."""

    def __init__(self, n: int = 64, shape: tuple[int, ...] = (1, 28, 28)):
        self.n, self.shape = n, tuple(shape)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        return torch.randint(0, 256, self.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(index))

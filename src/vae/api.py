"""The Python API, for notebooks and scripts: everything the commands do, as functions.

    import vae
    model = vae.load("outputs/DATE/TIME/checkpoints/best.ckpt")  # eval mode, on the GPU if there is one
    z = vae.encode(model, x)             # x (B, C, H, W) in [0, 1] (or uint8) -> posterior means (B, D)
    x_hat = vae.decode(model, z)         # -> mean images (B, C, H, W) in [0, 1]
    x_hat = vae.reconstruct(model, x)    # decode(encode(x)); family=cvae: each also takes labels y=
    images = vae.sample(model, 16, seed=0)   # family=cvae: the classes in turn, or y=
    metrics = vae.evaluate(model, nll_samples=100)   # on the test split the model was trained with
    paths = vae.draw_pictures(model, "pictures/")    # the PNGs of vae-sample
    results = vae.train(vae.compose(["experiment=conv16", "debug=default"], output_dir="runs/a"))

Tensors go in on any device and come out on the model's; no gradients are kept. Bad input (a count that
is not a positive integer, another shape, floats outside [0, 1], NaN, labels out of range) is a
vae.errors.ConfigError (a ValueError) whose one line names the argument and what would be valid.
"""

import datetime
from collections.abc import Sequence
from pathlib import Path

import torch
from hydra import compose as hydra_compose
from hydra import initialize_config_dir, initialize_config_module
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from vae.assemble import image_shape
from vae.config_path import CHECKOUT_CONF, IN_CHECKOUT
from vae.console import quiet_libraries
from vae.evaluation import evaluate_test_split
from vae.inputs import check_codes, check_count, check_images, check_labels, check_seed, classes_of
from vae.loading import load_trained
from vae.pictures import draw_all, fixed_test_images, save_pictures
from vae.system import System
from vae.training import train as fit_and_test

__all__ = ["compose", "train", "load", "encode", "decode", "reconstruct", "sample", "evaluate", "draw_pictures"]


def compose(overrides: Sequence[str] = (), output_dir: str | Path | None = None, config_name: str = "train") -> DictConfig:
    """The config `vae-train <overrides>` would run, for `train(cfg)`; its run folder is `output_dir`
    (default: outputs/DATE/TIME under the current folder, as the command's)."""
    if output_dir is None:
        output_dir = Path("outputs") / datetime.datetime.now().strftime("%Y-%m-%d/%H-%M-%S")
    init = initialize_config_dir(str(CHECKOUT_CONF), version_base="1.3") if IN_CHECKOUT else (
        initialize_config_module("vae.conf", version_base="1.3"))  # fmt: skip
    with init:
        extra = [f"paths.output_dir={Path(output_dir).resolve()}"] if config_name == "train" else []
        return hydra_compose(config_name, overrides=[*extra, *overrides])


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, test and evaluate as `vae-train` does (`vae.training.train`), as quietly: no library tips or warnings
    a user cannot act on. Returns the test metrics and val/elbo, and `checkpoint`, the best checkpoint's path."""
    quiet_libraries()
    return fit_and_test(cfg)


def load(path: str | Path, device: str | torch.device = "auto", trust: Sequence[str] = ()) -> System:
    """The model of a checkpoint (read weights-only), in eval mode on `device` (auto: cuda if there is one).

    The checkpoint's config may name only vae's own parts, and `trust`: targets of your own it was trained with;
    weights that hold NaN or inf are refused (as by vae-eval and vae-sample: `vae.loading`).
    """
    system, _ = load_trained(path, trust, device)
    return system


def as_images(model: System, x: Tensor) -> Tensor:
    """x (B, C, H, W), uint8 or floats in [0, 1], as float32 in [0, 1] on the model's device; anything else
    (another shape, floats outside [0, 1], NaN) is one line naming x and what would be valid."""
    return check_images(x, image_shape(training_config(model)), model.device)


@torch.no_grad()
def encode(model: System, x: Tensor, y: Tensor | None = None) -> Tensor:
    """x (B, C, H, W) -> the code E[z|x] (B, D); y (B,): the labels, which a conditional family needs."""
    x = as_images(model, x)
    return model.encode(x, check_labels(y, len(x), classes_of(model), model.device))


@torch.no_grad()
def decode(model: System, z: Tensor, y: Tensor | None = None) -> Tensor:
    """z (B, D) -> the mean image E[x|z] (B, C, H, W) in [0, 1]; y (B,): labels for a conditional family."""
    z = check_codes(z, model.latent_dim, model.device)
    return model.decode(z, check_labels(y, len(z), classes_of(model), model.device))


def reconstruct(model: System, x: Tensor, y: Tensor | None = None) -> Tensor:
    """x (B, C, H, W) -> decode(encode(x)) (B, C, H, W) in [0, 1]; y (B,): labels for a conditional family."""
    return decode(model, encode(model, x, y), y)


@torch.no_grad()
def sample(model: System, n: int, seed: int | None = None, y: Tensor | None = None) -> Tensor:
    """n mean images (n, C, H, W) of prior draws z ~ p(z); a seed makes them repeatable. A conditional
    family draws label y (n,) when given, else its classes in turn."""
    n, seed = check_count("n", n), check_seed(seed)
    y = check_labels(y, n, classes_of(model), model.device, needed=False)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return model.sample(n, y, generator)


def training_config(model: System) -> DictConfig:
    """The composed config the model was trained with (it rides in every checkpoint)."""
    return OmegaConf.create(model.hparams["config"])


def evaluate(model: System, nll_samples: int = 100, chunk_size: int | None = None) -> dict[str, float]:
    """The metrics of vae-eval on the model's test split: elbo, rec, kl, nll (k = nll_samples; 0 skips it), bpd,
    active units."""
    datamodule = instantiate(training_config(model).data)
    return evaluate_test_split(model.eval(), datamodule, nll_samples, chunk_size)


def draw_pictures(model: System, out_dir: str | Path, n: int = 64, n_images: int = 8, seed: int = 0) -> list[Path]:
    """The pictures of vae-sample (samples, reconstructions, traversals, interpolations; for D = 2 the
    manifold and the codes) of the model's test split, as PNGs in out_dir."""
    data = instantiate(training_config(model).data)
    data.setup("test")
    n_codes = 1000 if model.latent_dim == 2 else n_images
    x, labels = fixed_test_images(data, max(n_images, n_codes), model.device)
    z = model.sample_latents(n, torch.Generator().manual_seed(seed))
    return save_pictures(draw_all(model.eval(), x, labels, z, n_images), Path(out_dir))

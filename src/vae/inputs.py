"""What the Python API (vae.api) takes from its caller, checked: counts, images, codes and labels.

Each check is a small pure function that returns the value ready for the model or raises a
ConfigError whose one line names the argument, what it got and what would be valid, as the
commands do for a bad setting; a raw torch error from deep inside a net names neither.
`classes_of` is the one place that asks a model whether it is conditional.
"""

import operator

import torch
from torch import Tensor, nn

from vae.errors import ConfigError


def classes_of(system: nn.Module) -> int | None:
    """How many labels the system's family takes if it is conditional (family=cvae), else None."""
    return system.model.classes or None  # the family interface: 0 for an unconditional family


def shape_text(shape: tuple) -> str:
    """(1, 28, 28) -> "(B, 1, 28, 28)": a batch of these."""
    return "(" + ", ".join(["B", *map(str, shape)]) + ")"


def check_count(name: str, n: object) -> int:
    """n as an int >= 1 (a Python or numpy integer; not a bool, a float or a tensor of several values)."""
    try:
        count = operator.index(n)  # type: ignore[arg-type]
    except TypeError:
        count = None
    if isinstance(n, bool) or count is None or count < 1:
        raise ConfigError(f"{name}={n!r} is invalid: it must be an integer >= 1")
    return count


def check_seed(seed: object) -> int | None:
    """A seed for torch.Generator: None or an integer in 0 .. 2**64 - 1."""
    if seed is None:
        return None
    try:
        value = operator.index(seed)  # type: ignore[arg-type]
    except TypeError:
        value = None
    if isinstance(seed, bool) or value is None or not 0 <= value < 2**64:
        raise ConfigError(f"seed={seed!r} is invalid: it must be None or an integer from 0 to {2**64 - 1}")
    return value


def check_tensor(name: str, value: object, shape: tuple, what: str) -> Tensor:
    """`value` as a tensor of shape (B, *shape), or a ConfigError naming the expected shape."""
    if not isinstance(value, Tensor):
        raise ConfigError(f"{name} is a {type(value).__name__}: give a torch.Tensor of {what} {shape_text(shape)}")
    if value.dim() != len(shape) + 1 or tuple(value.shape[1:]) != tuple(shape):
        raise ConfigError(f"{name} has shape {tuple(value.shape)}: give {what} {shape_text(shape)}")
    return value


def check_images(x: object, shape: tuple[int, int, int], device: torch.device) -> Tensor:
    """x (B, C, H, W), uint8 in 0..255 or floats in [0, 1], as float32 in [0, 1] on `device`.

    Floats outside [0, 1] (pixels in 0..255 given as floats, most often) and NaN or inf are refused:
    the likelihoods model pixels in [0, 1], and a code of such an image would be silently wrong.
    """
    x = check_tensor("x", x, shape, "images")
    if x.dtype == torch.uint8:
        return x.to(device).float() / 255
    if not x.is_floating_point():
        raise ConfigError(f"x has dtype {x.dtype}: give images as floats in [0, 1] or as torch.uint8 in 0..255")
    x = x.to(device).float()
    if x.numel() and not torch.isfinite(x).all():
        raise ConfigError("x holds NaN or inf: give images as floats in [0, 1] or as torch.uint8 in 0..255")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        low, high = x.min().item(), x.max().item()
        hint = " (pixels in 0..255? divide by 255 or give torch.uint8)" if high > 1 else ""
        raise ConfigError(f"x holds values from {low:g} to {high:g}: give images as floats in [0, 1]{hint} or as torch.uint8")
    return x


def check_codes(z: object, latent_dim: int, device: torch.device) -> Tensor:
    """z (B, D) of finite numbers, as float32 on `device`."""
    z = check_tensor("z", z, (latent_dim,), "codes")
    if z.dtype == torch.bool or z.is_complex():
        raise ConfigError(f"z has dtype {z.dtype}: give codes as real numbers {shape_text((latent_dim,))}")
    z = z.to(device).float()
    if z.numel() and not torch.isfinite(z).all():
        raise ConfigError(f"z holds NaN or inf: give finite codes {shape_text((latent_dim,))}")
    return z


def check_labels(y: object, batch: int, classes: int | None, device: torch.device, needed: bool = True) -> Tensor | None:
    """y (B,) of integer labels in 0..classes - 1 for a conditional model (`classes` not None), as int64 on `device`.

    A conditional model without y is refused where it needs one (`needed`); an unconditional one with y
    is refused too, rather than y being silently ignored.
    """
    if classes is None:
        if y is not None:
            raise ConfigError("y is given but the model takes no labels: only a conditional model (family=cvae) does; drop y")
        return None
    if y is None:
        if needed:
            raise ConfigError(
                f"the model is conditional (family=cvae): give its labels, y = a tensor ({batch},) of integers in 0..{classes - 1}"
            )
        return None
    if not isinstance(y, Tensor):
        raise ConfigError(f"y is a {type(y).__name__}: give labels as a torch.Tensor ({batch},) of integers in 0..{classes - 1}")
    if tuple(y.shape) != (batch,):
        raise ConfigError(f"y has shape {tuple(y.shape)}: give one label per image, ({batch},) integers in 0..{classes - 1}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ConfigError(f"y has dtype {y.dtype}: give labels as integers in 0..{classes - 1} (e.g. torch.long)")
    if y.numel() and (y.min() < 0 or y.max() >= classes):
        raise ConfigError(f"y holds labels from {y.min().item()} to {y.max().item()}: the model knows 0..{classes - 1}")
    return y.to(device).long()

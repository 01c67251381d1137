"""A trained model for a command (`vae-eval`, `vae-sample`) or `vae.load`: the device it runs on, the run folder it
belongs to."""

from pathlib import Path

import torch

from vae.errors import ConfigError


def run_dir_of(ckpt_path: Path) -> Path:
    """The run folder a checkpoint belongs to: the parent of its `checkpoints/` folder."""
    return ckpt_path.parent.parent if ckpt_path.parent.name == "checkpoints" else ckpt_path.parent


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.split(":")[0] not in ("cpu", "cuda"):
        raise ConfigError(f"device={name} is unknown: use auto, cpu or cuda")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but this machine has no CUDA GPU: use device=auto or device=cpu")
    return torch.device(name)

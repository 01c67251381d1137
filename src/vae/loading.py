"""A trained model for a command (`vae-eval`, `vae-sample`) or `vae.load`: the preamble they share.

The checkpoint is read as data (`vae.build.load_system`: weights only, the stored config's targets
checked against `trust`), its weights must be finite, the data set is looked for in `data_dir` when
given, and the model runs on the chosen device; a command also finds the run folder it writes into.
"""

from collections.abc import Iterable
from pathlib import Path

import torch
from omegaconf import DictConfig

from vae.build import load_system
from vae.checkpoints import non_finite_weights
from vae.errors import ConfigError
from vae.system import System
from vae.targets import searchpath_targets


def load_for_command(cfg: DictConfig) -> tuple[System, DictConfig, Path, Path]:
    """eval.py's and sample.py's checkpoint: (the system, the config it was trained with, `ckpt_path`, its run folder).

    cfg: the command's config (conf/eval.yaml, conf/sample.yaml): `ckpt_path` (required), `trust`, `device`, `data_dir`.
    """
    if not cfg.get("ckpt_path"):
        raise ConfigError("ckpt_path is required: give a .ckpt file, e.g. ckpt_path=<run folder>/checkpoints/best.ckpt")
    ckpt_path = Path(cfg.ckpt_path).expanduser()
    trust = [*(cfg.get("trust") or ()), *searchpath_targets()]  # and the targets of config folders given on its command line
    system, train_cfg = load_trained(ckpt_path, trust, cfg.device, cfg.get("data_dir"))
    return system, train_cfg, ckpt_path, run_dir_of(ckpt_path.resolve())


def load_trained(
    path: str | Path, trust: Iterable[str] = (), device: str | torch.device = "auto", data_dir: str | None = None
) -> tuple[System, DictConfig]:
    """(the system of a checkpoint in eval mode on `device`, the config it was trained with, reading its data from
    `data_dir` when given). device: a name (`pick_device`) or a torch.device."""
    ckpt_path = Path(path).expanduser()
    system, train_cfg = load_system(ckpt_path, trust=trust)
    bad = non_finite_weights(system.state_dict())
    if bad:
        raise ConfigError(
            f"ckpt_path={ckpt_path} holds non-finite weights ({bad[0]} has NaN or inf): there is nothing to "
            "evaluate or draw; give a checkpoint saved before the run diverged"
        )
    if data_dir:
        train_cfg.data.root = data_dir
    return system.to(pick_device(device) if isinstance(device, str) else device), train_cfg


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

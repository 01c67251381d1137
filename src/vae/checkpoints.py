"""Checkpoints: written whole or not at all, read without running code from the file, and rebuilt.

Every checkpoint holds the composed config it was trained with (`hyper_parameters.config`),
so eval and sampling need nothing but the file. `AtomicCheckpointIO` is the Trainer plugin
through which Lightning writes and reads every checkpoint file (resume, test, every save).
"""

import pickle
import re
from pathlib import Path

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from vae.errors import ConfigError, TrainingDiverged
from vae.files import atomic_write


def load_checkpoint(path: str | Path, map_location=torch.device("cpu")) -> dict:
    """The checkpoint as plain data: `weights_only=True` refuses any pickle that would run code."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path={path} does not exist: give a .ckpt file from a run's checkpoints/ folder")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL (\S+)", str(err))  # torch names the callable the pickle asked for
        asks = f"it asks to call {found.group(1)} while loading" if found else "it holds more than plain data"
        raise ConfigError(
            f"ckpt_path={path} is refused: {asks}; a checkpoint may hold only tensors and plain data"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise ConfigError(f"ckpt_path={path} is not a readable checkpoint (truncated or corrupt?): {err}") from None


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint file I/O, made safe: a write is whole or absent, a read runs no code.

    A write goes to `<name>.tmp`, is flushed to disk, then renamed over `<name>`: a kill at any
    moment leaves the previous file or the new one, never half of one. Non-finite weights are
    never written, so a diverged run cannot overwrite a good checkpoint.
    """

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        path = Path(path)
        check_finite_weights(checkpoint, path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "wb") as file:
            torch.save(checkpoint, file)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        return load_checkpoint(path, map_location=map_location)


def check_finite_weights(checkpoint: dict, path: Path) -> None:
    """Refuse to save weights that hold NaN or inf."""
    weights = checkpoint.get("state_dict", {})
    bad = [name for name, t in weights.items() if t.is_floating_point() and not t.isfinite().all()]
    if bad:
        raise TrainingDiverged(
            f"the weights went non-finite by step {checkpoint.get('global_step')} ({bad[0]}): {path} was not written, "
            "the checkpoints saved before are kept; lower optim.lr"
        )


def check_fits(checkpoint: dict, state_dict: dict, cfg: DictConfig, path: str | Path) -> None:
    """A checkpoint's weights must have this model's names and shapes; if not, say which config it needs."""
    theirs = {name: tuple(t.shape) for name, t in checkpoint.get("state_dict", {}).items()}
    ours = {name: tuple(t.shape) for name, t in state_dict.items()}
    if theirs != ours:
        needs = describe(checkpoint_config(checkpoint, path))
        raise ConfigError(
            f"ckpt_path={path} was trained with {needs}, but this run is {describe(cfg)}: "
            f"add {needs} to the command line (or use resume=<run folder>, which reuses a run's config)"
        )


def checkpoint_config(checkpoint: dict, path: str | Path) -> DictConfig:
    """The composed config a checkpoint was trained with."""
    try:
        cfg = OmegaConf.create(checkpoint["hyper_parameters"]["config"])
    except (KeyError, TypeError):
        raise ConfigError(f"ckpt_path={path} holds no training config: was it written by src/train.py?") from None
    if "family" not in cfg:  # written before the model zoo: its weights are laid out differently
        raise ConfigError(
            f"ckpt_path={path} is from an earlier version of vae (0.1, before the model zoo) and cannot be loaded: "
            "train it again with this version"
        )
    return cfg


def describe(cfg: DictConfig) -> str:
    """The choices that fix a model's shape, as overrides: what a checkpoint needs to be loaded into."""
    model = cfg.model.encoder._target_.rsplit(".", 1)[-1].removesuffix("Encoder").lower()
    return f"model={model} latent={cfg.latent} data={cfg.data.source}"

"""Checkpoints: written whole or not at all, read without running code from the file, and rebuilt.

Every checkpoint holds the composed config it was trained with (`hyper_parameters.config`)
and a digest of it, so eval and sampling need nothing but the file and an edited config is
noticed. `AtomicCheckpointIO` is the Trainer plugin through which Lightning writes and reads
every checkpoint file (resume, test, every save).
"""

import hashlib
import json
import pickle
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from vae.errors import ConfigError, TrainingDiverged
from vae.files import atomic_write
from vae.targets import check_targets


def load_checkpoint(path: str | Path, map_location=torch.device("cpu"), trust: Iterable[str] = ()) -> dict:
    """The checkpoint as plain data: `weights_only=True` refuses any pickle that would run code, and
    its stored config may name only the package's own parts and `trust` (vae.targets)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path={path} does not exist: give a .ckpt file from a run's checkpoints/ folder")
    unreadable = f"ckpt_path={path} is not a readable checkpoint (truncated or corrupt?)"
    try:
        if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else fails in odd ways
            raise ConfigError(f"{unreadable}: it is not a file written by torch.save")
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL (\S+)", str(err))  # torch names the callable the pickle asked for
        if not found:
            raise ConfigError(f"{unreadable}: {' '.join(str(err).split()[:12])} ...") from None
        raise ConfigError(
            f"ckpt_path={path} is refused: it asks to call {found.group(1)} while loading; "
            "a checkpoint may hold only tensors and plain data"
        ) from None
    except ConfigError:
        raise
    except Exception as err:  # a damaged archive: torch's reader raises whatever it trips over
        raise ConfigError(f"{unreadable}: {type(err).__name__}: {' '.join(str(err).split())}") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        keys = ", ".join(map(str, list(checkpoint)[:5])) if isinstance(checkpoint, dict) else ""
        held = f"a dict of {keys}" if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ConfigError(
            f"ckpt_path={path} is not a training checkpoint (it holds {held}, no state_dict): "
            "give a .ckpt file from a run's checkpoints/ folder"
        )
    stored = checkpoint.get("config_digest")
    if stored is not None and stored != config_digest(checkpoint):
        raise ConfigError(
            f"ckpt_path={path} was altered: the config stored in it (hyper_parameters.config) no longer matches "
            "the digest written with it; use the checkpoint as training wrote it"
        )
    config = (checkpoint.get("hyper_parameters") or {}).get("config")
    if config is not None:  # checked before anything can instantiate it; what was checked is what gets built
        check_version(config, path)
        checked = check_targets(config, f"ckpt_path={path}", trust)
        checkpoint["hyper_parameters"]["config"] = with_later_settings(checked)
    return checkpoint


def config_digest(checkpoint: dict) -> str | None:
    """SHA-256 of the stored training config, so an accidental edit of the file's config is noticed on loading.

    Not a signature: whoever edits the file on purpose can recompute it. `vae.targets` is what
    keeps a crafted config from running anything.
    """
    config = (checkpoint.get("hyper_parameters") or {}).get("config")
    if config is None:
        return None
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def non_finite_weights(state_dict: dict) -> list[str]:
    """Names of the floating-point tensors that hold NaN or inf."""
    floats = {name: t for name, t in state_dict.items() if torch.is_tensor(t) and t.is_floating_point()}
    return [name for name, t in floats.items() if not t.isfinite().all()]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint file I/O, made safe: a write is whole or absent, a read runs no code.

    A write goes to `<name>.tmp`, is flushed to disk, then renamed over `<name>`: a kill at any
    moment leaves the previous file or the new one, never half of one. Non-finite weights are
    never written, so a diverged run cannot overwrite a good checkpoint.
    """

    def __init__(self, trust: Iterable[str] = ()):
        super().__init__()
        self.trust = set(trust)  # the targets the run's own config names: a checkpoint may name them too

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        path = Path(path)
        check_finite_weights(checkpoint, path)
        digest = config_digest(checkpoint)
        if digest is not None:
            checkpoint["config_digest"] = digest
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "wb") as file:
            torch.save(checkpoint, file)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        return load_checkpoint(path, map_location=map_location, trust=self.trust)


def check_finite_weights(checkpoint: dict, path: Path) -> None:
    """Refuse to save weights that hold NaN or inf."""
    bad = non_finite_weights(checkpoint.get("state_dict", {}))
    if bad:
        raise TrainingDiverged(
            f"the weights went non-finite by step {checkpoint.get('global_step')} ({bad[0]}): {path} was not written, "
            "the checkpoints saved before are kept; lower optimizer.lr"
        )


def check_fits(checkpoint: dict, state_dict: dict, cfg: DictConfig, path: str | Path, resume: str | None = None) -> None:
    """A checkpoint's weights must have this model's names and shapes; if not, say which settings it needs.

    `resume`: the run folder being resumed, whose own overrides were replayed: then the command
    line asked for a different model, and the advice is to leave that out.
    """
    theirs = {name: tuple(t.shape) for name, t in checkpoint.get("state_dict", {}).items()}
    ours = {name: tuple(t.shape) for name, t in state_dict.items()}
    if theirs == ours:
        return
    trained = checkpoint_config(checkpoint, path)
    if describe(trained) != describe(cfg):
        needs, this_run = describe(trained), describe(cfg)
    else:
        # an objective's settings shape only its own parts (a discriminator): named when nothing else differs
        differ = differing_settings(trained, cfg) or differing_settings(trained, cfg, RUN_SETTINGS - {"objective"})
        if not differ:
            raise ConfigError(f"ckpt_path={path} does not fit the config stored in it: the file is damaged")
        needs = " ".join(f"{key}={value}" for key, value, _ in differ)
        this_run = " ".join(f"{key}={value}" for key, _, value in differ)
    if resume:
        raise ConfigError(
            f"resume={resume} cannot change the model: the run was trained with {needs}, this command asks for "
            f"{this_run}; leave that out (a resume may change trainer.* and other settings that keep the weights' shapes)"
        )
    raise ConfigError(
        f"ckpt_path={path} was trained with {needs}, but this run has {this_run}: add {needs} to the command "
        "line (or use resume=<run folder>, which reuses a run's config)"
    )


RUN_SETTINGS = {"trainer", "logger", "callbacks", "paths", "hydra", "optimizer", "scheduler", "seed", "ckpt_path", "resume",
                "nll_samples", "hparams_search", "beta", "objective", "steps_per_call"}  # fmt: skip  # top-level keys that never shape weights
DATA_RUN_SETTINGS = {"root", "batch_size", "download", "val_size", "test_size", "seed", "split_seed", "binarize", "path"}


def differing_settings(trained: DictConfig, cfg: DictConfig, skip: set = RUN_SETTINGS) -> list[tuple[str, str, str]]:
    """(key, the checkpoint's value, this run's value) for each weight-shaping setting the two configs disagree on.

    Keys that follow another by interpolation in this run's config (`model.decoder.hidden_dim:
    ${model.encoder.hidden_dim}`) are left out: setting the one they follow is enough.
    """
    theirs, ours = dict(shape_settings(trained, skip=skip)), dict(shape_settings(cfg, skip=skip))
    return [
        (key, compact(theirs.get(key)), compact(ours.get(key)))
        for key in dict.fromkeys([*theirs, *ours])
        if theirs.get(key, KeyError) != ours.get(key, KeyError) and not is_follower(cfg, key)
    ]


def shape_settings(node: DictConfig, prefix: str = "", skip: set = RUN_SETTINGS):
    """(dotted key, resolved value) of each leaf that can shape the weights (top-level keys in `skip` cannot)."""
    for key in node:
        full = f"{prefix}{key}"
        if (not prefix and key in skip) or (prefix == "data." and key in DATA_RUN_SETTINGS):
            continue
        value = node[key]
        if OmegaConf.is_dict(value):
            yield from shape_settings(value, f"{full}.", skip)
        else:
            yield full, OmegaConf.to_container(value, resolve=True) if OmegaConf.is_list(value) else value


def is_follower(cfg: DictConfig, key: str) -> bool:
    """Whether `key` in `cfg` is an interpolation of another key."""
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return OmegaConf.is_dict(node) and leaf in node and OmegaConf.is_interpolation(node, leaf)


def compact(value) -> str:
    """An override's value as typed on the command line: lists without spaces."""
    return json.dumps(value, separators=(",", ":")) if isinstance(value, (list, dict)) else str(value)


def checkpoint_config(checkpoint: dict, path: str | Path) -> DictConfig:
    """The composed config a checkpoint was trained with."""
    try:
        cfg = OmegaConf.create(checkpoint["hyper_parameters"]["config"])
    except (KeyError, TypeError):
        raise ConfigError(f"ckpt_path={path} holds no training config: was it written by src/train.py?") from None
    return cfg


def check_version(config, path: str | Path) -> None:
    """A stored config of a layout this version cannot rebuild is one line naming the version that wrote it."""
    if isinstance(config, dict) and "family" not in config:  # written before the model zoo: other weights' layout
        raise ConfigError(
            f"ckpt_path={path} is from an earlier version of vae (0.1, before the model zoo) and cannot be loaded: "
            "train it again with this version"
        )


def with_later_settings(config: dict) -> dict:
    """A stored config with the settings added since it was written, each at the value that rebuilds its weights:
    a family=cvae checkpoint without family.label_embedding fed the decoder the one-hot label (0)."""
    family = config.get("family") or {}
    if str(family.get("_target_", "")).endswith(".cvae.CVAEModel") and "label_embedding" not in family:
        config = {**config, "family": {**family, "label_embedding": 0}}
    return config


def describe(cfg: DictConfig) -> str:
    """The choices that fix a model's shape, as overrides: what a checkpoint needs to be loaded into."""
    model = cfg.model.get("name") or cfg.model.encoder._target_.rsplit(".", 1)[-1].removesuffix("Encoder").lower()  # name: the stored choice
    family = cfg.family._target_.split(".")[-2]  # the module: vae, hvae, cvae, vqvae
    return f"{'' if family == 'vae' else f'family={family} '}model={model} latent={cfg.latent} data={cfg.data.get('source') or cfg.data.get('dataset', {}).get('_target_')}"

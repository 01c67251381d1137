"""What a stored config may name: the `_target_`s of the package's own configs, and nothing else.

A checkpoint's config is rebuilt with Hydra's `instantiate`, which calls whatever a `_target_`
names, with whatever arguments sit beside it: an edited checkpoint could name
`pathlib.Path.write_text` and write any file. So a checkpoint is read as data: before anything in
its config is instantiated, every `_target_` in it (nested ones and those inside lists included;
the run settings of RUN_SECTIONS, which are never built from a stored config, aside)
must be one that a file under the package's `conf/` names (its families, parts, data sets,
objectives, and the optimiser and scheduler classes it ships configs for). A target the user
wrote (a net or data set of their own) is allowed only where the user names it: on the command
line that trains from the checkpoint, or in `trust=[...]` for eval, sample and `vae.load`, or in a config
folder of their own that they name on the command line (`hydra.searchpath=[file://my_conf]`).

The config digest stored beside the config catches accidental edits only: whoever edits a file
on purpose can recompute it. This allowlist is what stops a crafted checkpoint.
"""

import functools
from collections.abc import Iterable, Iterator
from importlib import resources

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

from vae.config_path import CHECKOUT_CONF, IN_CHECKOUT
from vae.errors import ConfigError

RUN_SECTIONS = ("callbacks", "logger", "trainer", "hydra", "hparams_search")  # built from the command line only, never
# from a stored config: a checkpoint trained with a callback of the user's own loads without naming it


@functools.cache
def package_targets() -> frozenset[str]:
    """Every `_target_` named by a YAML file of the package's configs (the checkout's conf/, or vae.conf)."""
    root = CHECKOUT_CONF if IN_CHECKOUT else resources.files("vae.conf")
    return frozenset(target for _, target in targets_in([yaml.safe_load(text) for text in yaml_texts(root)]))


def yaml_texts(folder) -> Iterator[str]:
    """The text of every .yaml file under `folder` (a Path or an importlib.resources Traversable)."""
    for entry in folder.iterdir():
        if entry.is_dir():
            yield from yaml_texts(entry)
        elif entry.name.endswith(".yaml"):
            yield entry.read_text()


def targets_in(node, where: str = "") -> Iterator[tuple[str, str]]:
    """(dotted place, target) of every `_target_` in a plain or OmegaConf tree of dicts and lists."""
    if isinstance(node, (DictConfig, ListConfig)):
        node = OmegaConf.to_container(node, resolve=True)
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "_target_":
                yield where or "(top level)", str(value)
            else:
                yield from targets_in(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from targets_in(value, f"{where}[{i}]")


def check_targets(config, source: str, trust: Iterable[str] = ()) -> dict:
    """The stored config, resolved, once every `_target_` in it is one of the package's configs or in `trust`.

    config: the stored config (plain or OmegaConf); source: what it came from, for the message. The
    check runs on the resolved tree, and the caller builds from what was checked, so no
    interpolation can bring a target in after the check.
    """
    try:
        resolved = OmegaConf.to_container(OmegaConf.create(config), resolve=True)
    except Exception as err:  # an interpolation that does not resolve, or data OmegaConf cannot hold
        raise ConfigError(f"{source} holds a config that cannot be read: {type(err).__name__}: {err}".split("\n")[0]) from None
    allowed = package_targets() | set(trust)
    built = {key: value for key, value in resolved.items() if key not in RUN_SECTIONS} if isinstance(resolved, dict) else resolved
    for where, target in targets_in(built):
        if target not in allowed:
            raise ConfigError(
                f"{source} is refused: its stored config names _target_ {target} (at {where}), which is not one of "
                f"vae's own parts; nothing in it was run. If you wrote {target} yourself and trust this file, "
                f"add trust=[{target}]"
            )
    return resolved


def searchpath_targets() -> set[str]:
    """The targets named by the YAML files of the config folders on this command's `hydra.searchpath=[file://...]`:
    folders of the user's own, vouched for by naming them on the command line (their data set, their nets)."""
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return set()
    folders = [Path(entry.removeprefix("file://")) for entry in HydraConfig.get().searchpath if entry.startswith("file://")]
    texts = [text for folder in folders if folder.is_dir() for text in yaml_texts(folder)]
    return {target for _, target in targets_in([yaml.safe_load(text) for text in texts])}


def trusted_by(cfg: DictConfig) -> set[str]:
    """The targets a run's own config names: what the user chose on their command line or in their config folder."""
    return {target for _, target in targets_in(cfg)}

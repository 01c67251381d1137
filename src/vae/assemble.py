"""Config -> the model and its objective: the family named by `family._target_` builds itself and its parts
(`Family.from_config`), and refuses an objective it cannot be trained with (`Family.check_objective`).

Shapes come from the data config (`ImageData.shape`, known before any data is loaded).
"""

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from vae.errors import ConfigError
from vae.families.base import Family
from vae.objectives.base import Objective


def image_shape(cfg: DictConfig) -> tuple[int, int, int]:
    """(C, H, W) of the data this config trains on."""
    return instantiate(cfg.data).shape


def family_class(cfg: DictConfig) -> type[Family]:
    """The family class `family._target_` names, refused in one line when it names none."""
    target = cfg.family._target_
    try:
        family = get_class(target)
    except Exception:
        family = None
    if not (isinstance(family, type) and issubclass(family, Family)):
        raise ConfigError(
            f"family._target_={target} is not a model family: give a subclass of vae.families.base.Family, "
            "e.g. vae.families.vae.VAEModel (family=vae, hvae, cvae, vqvae)"
        )
    return family


def check_new_run(cfg: DictConfig) -> None:
    """What a new run's family refuses before anything is built (`Family.check_config`); a checkpoint is not asked."""
    family_class(cfg).check_config(cfg)


def build_model(cfg: DictConfig) -> Family:
    """The family of `cfg.family` with its nets, posterior, prior and likelihood, as that family wires them."""
    return family_class(cfg).from_config(cfg, image_shape(cfg))


def build_objective(cfg: DictConfig, model: Family) -> Objective:
    """The objective of `cfg.objective`, refused with one line where the model's family cannot be trained with it."""
    spec = cfg.objective
    schedule = spec.get("schedule")
    if schedule is not None and schedule.get("_target_") == "vae.schedules.Capacity":  # a checkpoint from when capacity
        spec = {"_target_": "vae.objectives.capacity.Capacity", **{key: schedule[key] for key in CAPACITY}}  # was a schedule
    objective = instantiate(spec)
    model.check_objective(objective)
    objective.attach(model)
    return objective


CAPACITY = ("gamma", "max_capacity", "capacity_steps")  # the settings `beta=capacity` had, now `objective=capacity`'s

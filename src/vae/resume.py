"""Where a resume starts: `python src/train.py resume=<run folder>`.

The command line replays the run's own overrides into its own folder (`resume_argv`); Lightning
restores the weights, optimiser, step and loop progress from `checkpoints/last.ckpt`
(`starting_checkpoint`), and the resumed run logs on into the W&B run it started. What Lightning
leaves out (the RNG streams, the run folder's paths, the CSV rows) is `vae.run_state.RunState`'s.
"""

from pathlib import Path

import torch
import yaml
from omegaconf import DictConfig

from vae.checkpoints import check_fits, load_checkpoint
from vae.errors import ConfigError
from vae.targets import trusted_by


def resume_argv(argv: list[str]) -> list[str]:
    """`resume=<run folder>` becomes the run's saved overrides and the folder as Hydra's run dir.

    Replaying the saved overrides recomposes the config the checkpoint was trained with, so a
    resume needs no other argument; an override given again (trainer.max_epochs=100) wins.
    """
    at = next((i for i, arg in enumerate(argv) if arg.startswith("resume=")), None)
    if at is None:
        return argv
    run_dir = Path(argv[at].split("=", 1)[1]).expanduser().resolve()
    if "-m" in argv or "--multirun" in argv:
        raise ConfigError(f"resume={run_dir} continues one run: leave out -m (resume each run of a sweep on its own)")
    last_checkpoint(run_dir)
    saved = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text()) or []
    given = {override_key(arg) for arg in argv if not arg.startswith("-")}
    # ckpt_path started the run; from now on last.ckpt continues it
    replayed = [arg for arg in saved if override_key(arg) not in given | {"resume", "ckpt_path"}]
    added = {override_key(arg) for arg in saved if arg.startswith("+")}  # keys the run added to the config
    argv = [f"++{arg}" if override_key(arg) in added and not arg.startswith(("+", "~", "-")) else arg for arg in argv]
    folder = "'" + str(run_dir).replace("'", "\\'") + "'"  # quoted for Hydra's override grammar
    # in place of resume=..., so the overrides stay one run of positional arguments for argparse
    return [*argv[:at], *replayed, f"resume={folder}", f"hydra.run.dir={folder}", *argv[at + 1 :]]


def override_key(override: str) -> str:
    """`+trainer.max_steps=5` -> `trainer.max_steps`."""
    return override.split("=", 1)[0].lstrip("+~")


def last_checkpoint(run_dir: str | Path) -> Path:
    """The checkpoint a resume starts from: `<run folder>/checkpoints/last.ckpt`."""
    run_dir = Path(run_dir)
    if not (run_dir / ".hydra" / "overrides.yaml").is_file():
        raise ConfigError(f"resume={run_dir} is not a run folder: give one that src/train.py made (outputs/DATE/TIME)")
    path = run_dir / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise ConfigError(f"resume={run_dir} has no checkpoints/last.ckpt: it stopped before its first checkpoint")
    return path


def starting_checkpoint(cfg: DictConfig, state_dict: dict) -> str | None:
    """The checkpoint this run continues from (`ckpt_path`, or the resumed run's last.ckpt), checked to fit."""
    path = cfg.get("ckpt_path") or (cfg.get("resume") and last_checkpoint(cfg.resume))
    if not path:
        return None
    checkpoint = load_checkpoint(path, trust=trusted_by(cfg))
    check_fits(checkpoint, state_dict, cfg, path, resume=None if cfg.get("ckpt_path") else cfg.get("resume"))
    check_not_past(cfg, checkpoint, path)
    if cfg.get("resume"):
        log_on_into_the_wandb_run(cfg, checkpoint.get("wandb_run_id"))
    return str(path)


def check_not_past(cfg: DictConfig, checkpoint: dict, path) -> None:
    """A run continued with a `trainer.max_epochs` below the epochs its checkpoint already holds is refused in one line."""
    most = cfg.trainer.get("max_epochs")
    progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
    epochs = progress.get("processed", checkpoint.get("epoch", 0))  # epochs whose batches all ran
    if most is not None and most != -1 and epochs > most:
        given = f"resume={cfg.resume}" if cfg.get("resume") else f"ckpt_path={path}"
        raise ConfigError(
            f"{given} is already past trainer.max_epochs={most}: its checkpoint holds {epochs} epochs; give "
            f"trainer.max_epochs={epochs} or more (equal to test it without training)"
        )


def checkpoint_step(path: str | None) -> int:
    """The optimiser steps the checkpoint a run starts from holds (0 for a new run): read mapped, not loaded."""
    return torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("global_step", 0) if path else 0


def log_on_into_the_wandb_run(cfg: DictConfig, wandb_id: str | None) -> None:
    """A resumed run logs on into the W&B run it started (`wandb_id`, stored in its checkpoints by RunState).

    A logger node takes the id if it declares an `id:` key (conf/logger/wandb.yaml does; a W&B logger of
    your own: add `id: null`). Lightning's WandbLogger resumes a run it is given the id of ("allow").
    """
    if not wandb_id:
        return
    for logger in (cfg.get("logger") or {}).values():
        if logger and "id" in logger:
            logger.id = wandb_id

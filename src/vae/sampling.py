"""`vae-sample` (`src/sample.py`): the pictures of a checkpoint as PNGs, by default in <run folder>/samples/."""

import logging
from pathlib import Path

import torch
from hydra.utils import instantiate

from vae.errors import ConfigError, check_int
from vae.loading import load_for_command
from vae.pictures import draw_all, fixed_test_images, save_pictures
from vae.samplers import FittedSampler, PriorSampler, fitted_sampler

log = logging.getLogger(__name__)


def draw_checkpoint(cfg) -> list[Path]:
    """`src/sample.py`: load a checkpoint safely and save its pictures (default: <run folder>/samples/).

    With `sampler=gmm` or `two_stage` the codes come from a density fitted to the training split's codes, and
    the pictures decoded from them are named for it (samples_gmm.png, class_samples_gmm.png, ...).
    """
    n = check_int("n", cfg.n, 1)
    sampler = instantiate(cfg.sampler) if cfg.get("sampler") else PriorSampler()
    system, train_cfg, ckpt_path, run_dir = load_for_command(cfg)
    if isinstance(sampler, FittedSampler):
        sampler.check(system.model)  # a refusal before the data is read
    x = labels = data = None
    try:
        data = instantiate(train_cfg.data)
        data.setup("test")
        x, labels = fixed_test_images(data, max(cfg.n_images, cfg.n_codes), system.device)
    except ConfigError as err:
        if isinstance(sampler, FittedSampler):
            raise
        log.warning("No test images (%s): drawing the prior's pictures only", err)
    label = check_label(cfg.get("label"), system.model, train_cfg)
    sampler = fitted_sampler(sampler, system, data)
    z = sampler.sample_latents(n, torch.Generator().manual_seed(cfg.seed))
    out_dir = Path(cfg.out_dir) if cfg.get("out_dir") else run_dir / "samples"
    pictures = draw_all(system, x, labels, z, cfg.n_images, when=f"from {ckpt_path.name}", label=label, source=sampler.source)
    paths = save_pictures({drawn_name(name, sampler.suffix): image for name, image in pictures.items()}, out_dir)
    log.info("Written: %s", ", ".join(str(p) for p in paths))
    return paths


def drawn_name(name: str, suffix: str) -> str:
    """A picture's file name: those decoded from the sampler's codes carry its suffix (samples_gmm), others not."""
    return f"{name}{suffix}" if name.startswith(("samples", "class_samples")) else name


def check_label(label, model, train_cfg) -> int | None:
    """sample.py's label=: a class of a conditional model, or None."""
    if label is None:
        return None
    if not model.classes:
        family = train_cfg.family._target_.split(".")[-2]
        raise ConfigError(f"label={label} needs a conditional model (family=cvae), but this checkpoint is family={family}: drop label=")
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < model.classes:
        raise ConfigError(f"label={label} is invalid: this model knows labels 0 to {model.classes - 1}")
    return check_int("label", label, 0)

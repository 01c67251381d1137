"""`vae-sample` (`src/sample.py`): the pictures of a checkpoint as PNGs, by default in <run folder>/samples/."""

import logging
from pathlib import Path

import torch
from hydra.utils import instantiate

from vae.errors import ConfigError, check_int
from vae.loading import load_for_command
from vae.pictures import draw_all, fixed_test_images, save_pictures

log = logging.getLogger(__name__)


def draw_checkpoint(cfg) -> list[Path]:
    """`src/sample.py`: load a checkpoint safely and save its pictures (default: <run folder>/samples/)."""
    n = check_int("n", cfg.n, 1)
    system, train_cfg, ckpt_path, run_dir = load_for_command(cfg)
    x = labels = None
    try:
        data = instantiate(train_cfg.data)
        data.setup("test")
        x, labels = fixed_test_images(data, max(cfg.n_images, cfg.n_codes), system.device)
    except ConfigError as err:
        log.warning("No test images (%s): drawing the prior's pictures only", err)
    label = check_label(cfg.get("label"), system.model, train_cfg)
    z = system.sample_latents(n, torch.Generator().manual_seed(cfg.seed))
    out_dir = Path(cfg.out_dir) if cfg.get("out_dir") else run_dir / "samples"
    paths = save_pictures(draw_all(system, x, labels, z, cfg.n_images, when=f"from {ckpt_path.name}", label=label), out_dir)
    log.info("Written: %s", ", ".join(str(p) for p in paths))
    return paths


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

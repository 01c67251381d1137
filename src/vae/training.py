"""`train(cfg)`: build the data, the system, the callbacks and the Trainer from a composed config, fit, test.

A plain function, so tests call it with a config from Hydra's `compose`; `src/train.py` wraps it.
"""

import logging
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vae.build import build_system, build_trainer
from vae.errors import ConfigError, check_int
from vae.evaluation import evaluate_test_split, format_table
from vae.files import write_json
from vae.loggers import report_results
from vae.report import write_report
from vae.resume import starting_checkpoint, stop_on_sigterm

log = logging.getLogger(__name__)
logging.getLogger("lightning").handlers.clear()  # its own console handler doubles every line under Hydra's


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit on the train split, choose the best checkpoint by val/elbo, report its test metrics and log p(x)."""
    run_dir = Path(cfg.paths.output_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"paths.output_dir={run_dir} cannot be written ({err.strerror}): choose another") from None
    check_int("nll_samples", cfg.nll_samples, 1)  # used at the end: fail before fitting, not after
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    system = build_system(cfg)
    ckpt_path = starting_checkpoint(cfg, system.state_dict())  # ckpt_path=, or resume=<run folder>'s last.ckpt
    trainer = build_trainer(cfg)
    if cfg.model.get("compile"):  # Lightning unwraps the compiled module for checkpoints
        system = torch.compile(system)
    with stop_on_sigterm(trainer, run_dir):  # SIGTERM: last.ckpt is saved, exit 143 with how to resume
        trainer.fit(system, datamodule=datamodule, ckpt_path=ckpt_path)
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        (results,) = trainer.test(system, datamodule=datamodule, ckpt_path=best or None, verbose=False)
    results = {name: float(value) for name, value in results.items()}
    if trainer.checkpoint_callback and trainer.checkpoint_callback.best_model_score is not None:
        results["val/elbo"] = float(trainer.checkpoint_callback.best_model_score)  # the best epoch's
    if trainer.is_global_zero:
        limit = trainer.limit_test_batches  # an int: the same test batches as trainer.test
        system.to(trainer.strategy.root_device)
        max_batches = limit if type(limit) is int else None
        evaluation = evaluate_test_split(system, datamodule, cfg.nll_samples, max_batches=max_batches)
        results = evaluation | results  # trainer.test's figures, reduced across ranks, win where both give one
        report_results(trainer.loggers, {k: v for k, v in results.items() if k.startswith(("test/", "val/"))}, trainer.global_step)
        write_json(run_dir / "results.json", {**results, "checkpoint": best, "run_dir": str(run_dir)})
        log.info("Test metrics (log p(x) from k = %d importance samples):\n%s", cfg.nll_samples, format_table(results))
        log.info("Report (curves, metrics, pictures): %s", write_report(run_dir, OmegaConf.to_container(cfg, resolve=True)))
        log.info("Run folder: %s", run_dir)
    return results

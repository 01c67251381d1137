"""`train(cfg)`: build the data, the system, the callbacks and the Trainer from a composed config, fit, test.

A plain function, so tests call it with a config from Hydra's `compose`; `src/train.py` wraps it.
"""

import logging
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import vae.steps_per_call as steps_per_call
from vae.assemble import check_new_run
from vae.build import build_system, build_trainer
from vae.errors import (
    ConfigError,
    check_int,
    check_number,
    find_config_error,
    library_words,
    trainer_refusal,
    trainer_type_error,
)
from vae.evaluation import evaluate_test_split
from vae.files import write_json
from vae.loggers import report_results
from vae.metrics.suite import check_metrics, judge
from vae.report import write_report
from vae.resume import checkpoint_step, starting_checkpoint
from vae.run_folder import hold, record, restored_unless_it_trains
from vae.sigterm import stop_on_sigterm, stop_testing_on_sigterm
from vae.table import format_table

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit on the train split, choose the best checkpoint by val/elbo, report its test metrics and log p(x).

    Everything a user can get wrong is checked before the run folder is written to: a run that
    fails its checks (a resume among them) leaves the folder as it was.
    """
    logging.getLogger("lightning").handlers.clear()  # its own console handler doubles every line under Hydra's
    run_dir = Path(cfg.paths.output_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"paths.output_dir={run_dir} cannot be written ({err.strerror}): choose another") from None
    config_yaml = OmegaConf.to_yaml(cfg)  # as composed, before a resume adds its W&B run id
    with hold(run_dir, resume=bool(cfg.get("resume"))):  # one run per folder
        check_int("nll_samples", cfg.nll_samples, 0)  # 0 skips log p(x); used at the end: fail before fitting, not after
        check_int("seed", cfg.seed, 0, 2**32 - 1)  # numpy's range, which seed_everything feeds
        check_number("optimizer.lr", cfg.optimizer.get("lr", 0.0), 0.0)
        steps_per_call.check(cfg)
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        datamodule = instantiate(cfg.data)
        check_metrics(cfg.get("metrics"), datamodule)  # metrics=[...] judged at the end: fail before fitting
        check_new_run(cfg)  # settings the family would ignore
        system = buildable(cfg, lambda: build_system(cfg))
        ckpt_path = starting_checkpoint(cfg, system.state_dict())  # ckpt_path=, or resume=<run folder>'s last.ckpt
        refused = trainer_type_error(cfg.trainer)
        if refused:
            raise ConfigError(refused)
        try:
            trainer = build_trainer(cfg, system.automatic_optimization)
        except Exception as err:
            if find_config_error(err) is not None:
                raise
            raise ConfigError(trainer_refusal(err, cfg.trainer)) from None
        start = checkpoint_step(ckpt_path)
        with restored_unless_it_trains(run_dir, bool(cfg.get("resume")), lambda: trainer.global_step > start):
            record(run_dir, config_yaml)  # the checks passed: from here on the folder is this run's
            return fit_and_test(cfg, trainer, system, datamodule, ckpt_path, run_dir)


def buildable(cfg: DictConfig, build):
    """`build()` the system; torch refusing the model's settings (too large, a zero width) is one line naming them."""
    settings = " ".join(f"{key}={value}" for key, value in model_settings(cfg)) or "the model settings"
    try:
        system = build()
    except Exception as err:
        if find_config_error(err) is not None:
            raise
        words = library_words(err)
        if "allocate" in words or isinstance(err, MemoryError):
            raise ConfigError(f"the model does not fit in memory ({words}): make it smaller than {settings}") from None
        raise ConfigError(f"the model cannot be built from {settings}: {words}") from None
    empty = [name for name, weight in system.named_parameters() if weight.numel() == 0]
    if empty:
        raise ConfigError(
            f"the model built from {settings} has a layer of width 0 ({empty[0]}): every width must be >= 1"
        )
    return system


def model_settings(cfg: DictConfig) -> list[tuple[str, str]]:
    """The numbers that size the model, as overrides: `latent` and the parts' own (not interpolated) values."""
    found = [("latent", cfg.get("latent"))]
    for group in ("model", "posterior", "prior", "likelihood"):
        node = cfg.get(group) or {}
        for key in node:
            value = node[key]
            numeric = isinstance(value, int) or (OmegaConf.is_list(value) and all(isinstance(v, int) for v in value))
            if numeric and not OmegaConf.is_interpolation(node, key) and not isinstance(value, bool):
                found.append((f"{group}.{key}", OmegaConf.to_container(value) if OmegaConf.is_list(value) else value))
    return [(key, str(value).replace(" ", "")) for key, value in found]


def parameter_count(system) -> int:
    return sum(weight.numel() for weight in system.parameters())


def fit_and_test(cfg: DictConfig, trainer: L.Trainer, system, datamodule, ckpt_path, run_dir: Path) -> dict[str, float]:
    if trainer.is_global_zero:
        log.info("model: %s parameters", f"{parameter_count(system):,}")  # in place of Lightning's summary table
    if cfg.model.get("compile"):
        system.compile_maths()
    with stop_on_sigterm(trainer, run_dir):  # SIGTERM: last.ckpt is saved, exit 143 with how to resume
        trainer.fit(system, datamodule=datamodule, ckpt_path=ckpt_path)
    if trainer.global_step == 0:
        log.warning(
            "no training step was taken (trainer.max_epochs=%s, trainer.max_steps=%s): the test figures are those "
            "of the untrained model", cfg.trainer.get("max_epochs"), cfg.trainer.get("max_steps", -1),
        )  # fmt: skip
    with stop_testing_on_sigterm(trainer, run_dir):  # SIGTERM: exit 143 with how to redo the test phase
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
            data_config = OmegaConf.to_container(cfg.data, resolve=True)
            results |= judge(cfg.get("metrics"), system, datamodule, data_config, seed=cfg.seed)  # metrics=[mig,fid,...]
            final = {k: v for k, v in results.items() if k.startswith(("test/", "val/"))}
            report_results(trainer.loggers, final, trainer.global_step, trainer.checkpoint_callback)
            # the checkpoint relative to the run folder, so results.json holds when the folder moves
            saved = Path(best).resolve().relative_to(run_dir.resolve()).as_posix() if best else ""
            write_json(run_dir / "results.json", {**results, "checkpoint": saved})
            results["checkpoint"] = best  # the caller of train() gets the path it can open
            k = f"k = {cfg.nll_samples} importance samples" if cfg.nll_samples else "skipped: nll_samples=0"
            log.info("Test metrics (log p(x): %s):\n%s", k, format_table(results))
            report = write_report(run_dir, OmegaConf.to_container(cfg, resolve=True))
            log.info("Report (curves, metrics, pictures): %s", report)
            log.info("Run folder: %s", run_dir)
    return results

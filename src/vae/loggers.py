"""Loggers: Weights & Biases set up for sweeps and for machines without network, and the final report.

`wandb_logger` is the `logger=wandb` target: Lightning's WandbLogger, grouped by sweep and
named by the run's overrides, offline (with a one-line warning) when W&B has no API key
or cannot be reached, so a run never prompts or hangs. `report_results` hands the final
test metrics to every logger and closes the W&B run, so a multirun starts a fresh one.
"""

import logging
import os

from lightning.pytorch.loggers import Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)


def sweep_group_and_run_name() -> tuple[str | None, str | None]:
    """(the sweep folder in a Hydra multirun, else None; the run's overrides, e.g. "latent=2,model=conv")."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():  # train(cfg) called directly, as tests do
        return None, None
    hydra = HydraConfig.get()
    group = hydra.sweep.dir if hydra.mode == RunMode.MULTIRUN else None
    return group, hydra.job.override_dirname or None


def wandb_offline_reason() -> str | None:
    """Why online W&B logging cannot work here (no API key; the server unreachable or refusing it), or None.

    Asks the server to verify the key, which takes at most WANDB_HTTP_TIMEOUT seconds (10 by
    default). An explicit WANDB_MODE is the user's choice and is left as it is.
    """
    import wandb
    from wandb.errors import CommError

    if os.environ.get("WANDB_MODE"):
        return None
    try:
        if not wandb.login(prompt=False, verify=True):  # a key from the env, settings or .netrc; never prompts
            return "no API key (run `wandb login` or set WANDB_API_KEY)"
    except CommError as err:  # AuthenticationError is one: the key refused, or no answer in time
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"the server did not accept the login ({detail})"
    return None


def wandb_logger(
    save_dir: str,
    project: str = "vae",
    group: str | None = None,
    name: str | None = None,
    log_model: bool | str = True,
    **kwargs,
) -> WandbLogger:
    """Lightning's WandbLogger; by default grouped by the sweep and named by the overrides, and offline
    when online logging cannot work. `log_model=True` uploads the best and last checkpoints at the end."""
    sweep_group, run_name = sweep_group_and_run_name()
    if kwargs.pop("offline", False):  # +logger.wandb.offline=true: W&B's own mode, which log_model allows
        kwargs["mode"] = "offline"
    reason = wandb_offline_reason() if rank_zero_only.rank == 0 and "mode" not in kwargs else None
    if reason:  # only rank zero talks to W&B
        log.warning("W&B is offline: %s; the run is kept under %s/wandb for `wandb sync`", reason, save_dir)
        kwargs["mode"] = "offline"
    return WandbLogger(
        save_dir=save_dir,
        project=project,
        group=group or sweep_group,
        name=name or run_name,
        log_model=log_model,
        **kwargs,
    )


def report_results(loggers: list[Logger], results: dict, step: int) -> None:
    """Give every logger the final test metrics (W&B: the run summary too) and close the W&B run."""
    scalars = {name: value for name, value in results.items() if isinstance(value, (int, float))}
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.summary.update(results)
            logger.experiment.finish()
        else:
            logger.log_metrics(scalars, step=step)
            logger.finalize("success")  # testing has finalised it already: write these too

"""Loggers: Weights & Biases set up for sweeps and for machines without network, MLflow, and the final report.

`wandb_logger` is the `logger=wandb` target: Lightning's WandbLogger, grouped by sweep, named by
the values the sweep varies, tagged with the config choices, offline (with a one-line warning) when W&B has no API key
or cannot be reached, so a run never prompts or hangs. `report_results` hands the final
test metrics to every logger (W&B: the best val/elbo too) and closes the W&B run, so a multirun starts a fresh one.
Both loggers receive the composed config flat (`flat_config`), so a W&B filter reads `config.latent` and
`config.model.hidden`, not `config.config.latent`. `mlflow_logger` is the `logger=mlflow` target: Lightning's
MLFlowLogger, a local store by default.
"""

import logging
import os

from lightning.pytorch.loggers import Logger, MLFlowLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from vae.errors import require_extra

log = logging.getLogger(__name__)


def sweep_group_and_run_name() -> tuple[str | None, str | None]:
    """(the sweep folder in a Hydra multirun, else None; the run's name: in a sweep its swept values only,
    e.g. "latent=2,model=conv", else all its overrides)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():  # train(cfg) called directly, as tests do
        return None, None
    hydra = HydraConfig.get()
    if hydra.mode != RunMode.MULTIRUN:
        return None, hydra.job.override_dirname or None
    swept = swept_keys(hydra)
    own = [override for override in hydra.overrides.task if override.split("=", 1)[0].lstrip("+~") in swept]
    return hydra.sweep.dir, ",".join(own) or hydra.job.override_dirname or None


def swept_keys(hydra) -> set[str]:
    """The keys a multirun sweeps: those given several values on its command line (Hydra saves it in
    <sweep dir>/multirun.yaml) and those of a sweeper's search space (`hydra.sweeper.params`)."""
    from pathlib import Path

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    keys = set((hydra.sweeper.get("params") or {}).keys())
    saved = Path(hydra.sweep.dir) / "multirun.yaml"
    if saved.is_file():
        given = OmegaConf.load(saved).hydra.overrides.task
        parsed = OverridesParser.create().parse_overrides([str(override) for override in given])
        keys |= {override.key_or_group for override in parsed if override.is_sweep_override()}
    return keys


def run_tags() -> list[str]:
    """The config group choices of this run as W&B tags ("model=conv", "beta=linear"), to filter runs by."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    choices = HydraConfig.get().runtime.choices
    return [f"{group}={option}"[:64] for group, option in choices.items() if option and not group.startswith("hydra")]


def wandb_offline_reason() -> str | None:
    """Why online W&B logging cannot work here (no API key; the server unreachable or refusing it), or None.

    Asks the server to verify the key, which takes at most WANDB_HTTP_TIMEOUT seconds (10 by
    default). An explicit WANDB_MODE is the user's choice and is left as it is.
    """
    import wandb
    from wandb.errors import CommError

    if os.environ.get("WANDB_MODE"):
        return None
    url = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    if api_key_given(url):  # then the server is asked before W&B's service starts: one left retrying can hang the exit
        unreachable = server_unreachable(url)
        if unreachable:
            return unreachable
    try:
        if not wandb.login(prompt=False, verify=True):  # a key from the env, settings or .netrc; never prompts
            return "no API key (run `wandb login` or set WANDB_API_KEY)"
    except CommError as err:  # AuthenticationError is one: the key refused, or no answer in time
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"the server did not accept the login ({detail})"
    return None


def api_key_given(url: str) -> bool:
    """Whether W&B has a key for `url` in WANDB_API_KEY or the netrc file where `wandb login` puts it."""
    import netrc
    from urllib.parse import urlsplit

    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(urlsplit(url).hostname or "") is not None
    except (OSError, netrc.NetrcParseError):  # no netrc file, or one W&B could not read either
        return False


def server_unreachable(url: str) -> str | None:
    """Why a TCP connection to the server of `url` fails within WANDB_HTTP_TIMEOUT seconds, or None.

    Skipped (None) behind a proxy, which the connection would bypass: the login then finds out.
    """
    import socket
    from urllib.parse import urlsplit

    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")):
        return None
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=float(os.environ.get("WANDB_HTTP_TIMEOUT", 10))):
            return None
    except OSError as err:  # refused, no route, no DNS, timed out
        return f"the server {parts.hostname}:{port} cannot be reached ({err.strerror or type(err).__name__})"


def flat_config(params) -> dict:
    """The system's hyperparameters, `{"config": <the composed config>}`, as the composed config itself."""
    params = dict(params)
    return dict(params["config"]) if set(params) == {"config"} else params


class FlatConfigWandbLogger(WandbLogger):
    """Lightning's WandbLogger, given the config flat: W&B's run config is the composed config."""

    def log_hyperparams(self, params) -> None:
        super().log_hyperparams(flat_config(params))


class FlatConfigMLFlowLogger(MLFlowLogger):
    """Lightning's MLFlowLogger, given the config flat: its params read `model/hidden`, not `config/model/hidden`."""

    def log_hyperparams(self, params) -> None:
        super().log_hyperparams(flat_config(params))


def mlflow_logger(
    experiment_name: str = "vae",
    tracking_uri: str | None = None,
    run_name: str | None = None,
    tags: dict | None = None,
    log_model: bool | str = True,
    **kwargs,
) -> MLFlowLogger:
    """Lightning's MLFlowLogger, named by the swept values in a sweep (else the run's overrides), tagged with the
    config choices; `tracking_uri` (default: MLFLOW_TRACKING_URI, else ./mlruns) a local folder or a server.
    `log_model=True` records the best and last checkpoints as artifacts at the end."""
    require_extra("mlflow", "mlflow", "logger=mlflow")
    _, name = sweep_group_and_run_name()
    tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "file:./mlruns"
    if tracking_uri.startswith("file:"):  # MLflow 3 keeps its folder store but asks for this opt-in
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    if tags is None:
        tags = dict(tag.split("=", 1) for tag in run_tags())
    return FlatConfigMLFlowLogger(
        experiment_name=experiment_name, tracking_uri=tracking_uri, run_name=run_name or name, tags=tags,
        log_model=log_model, **kwargs,
    )  # fmt: skip


def wandb_logger(
    save_dir: str,
    project: str = "vae",
    group: str | None = None,
    name: str | None = None,
    log_model: bool | str = True,
    job_type: str = "train",
    tags: list[str] | None = None,
    **kwargs,
) -> WandbLogger:
    """Lightning's WandbLogger; by default grouped by the sweep, named by the swept values, tagged with the
    config group choices, and offline when online logging cannot work. `log_model=True` uploads the best and
    last checkpoints at the end."""
    require_extra("wandb", "wandb", "logger=wandb")
    sweep_group, run_name = sweep_group_and_run_name()
    if kwargs.pop("offline", False):  # +logger.wandb.offline=true: W&B's own mode, which log_model allows
        kwargs["mode"] = "offline"
    reason = wandb_offline_reason() if rank_zero_only.rank == 0 and "mode" not in kwargs else None
    if reason:  # only rank zero talks to W&B
        log.warning("W&B is offline: %s; the run is kept under %s/wandb for `wandb sync`", reason, save_dir)
        kwargs["mode"] = "offline"
    return FlatConfigWandbLogger(
        save_dir=save_dir,
        project=project,
        group=group or sweep_group,
        name=name or run_name,
        log_model=log_model,
        job_type=job_type,
        tags=list(tags) if tags is not None else run_tags(),
        **kwargs,
    )


def report_results(loggers: list[Logger], results: dict, step: int, best_checkpoint=None) -> None:
    """Give every logger the final test metrics and close the W&B run. W&B's summary gets all of `results`:
    with `val/elbo` the best epoch's (the one the test metrics come from), not the last one logged.
    `best_checkpoint`: the ModelCheckpoint that chose best.ckpt, whose files MLflow records (it would
    otherwise record those of the callback that saved last: last.ckpt alone)."""
    scalars = {name: value for name, value in results.items() if name.startswith("test/") and isinstance(value, (int, float))}
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.summary.update(results)
            logger.experiment.finish()
        else:
            if isinstance(logger, MLFlowLogger) and best_checkpoint is not None:
                logger.after_save_checkpoint(best_checkpoint)  # Lightning's hook: finalize records its files
            logger.log_metrics(scalars, step=step)
            logger.finalize("success")  # testing has finalised it already: write these too

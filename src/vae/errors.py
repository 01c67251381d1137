"""User errors and their messages: a bad value on the command line, a missing file, a stopped run.

Whichever library refuses a value (Hydra, Lightning's Trainer, torch), the user sees one
`error:` line that names the setting and what would be valid, in the library's own words
where they are clear; `vae.cli.run_cli` prints it and exits with code 2.
"""

import errno
import math
import re

UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST, errno.ENOSPC}  # an OSError's errno
DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def train_command() -> str:
    """How this process was started, for messages that say what to run next: `vae-train` when
    installed, `python src/train.py` in a checkout (as the script was named)."""
    import os
    import sys

    script = sys.argv[0] if sys.argv else ""
    if os.path.basename(script) == "vae-train":
        return "vae-train"
    return f"python {script}" if script.endswith("train.py") else "python src/train.py"


class ConfigError(ValueError):
    """A problem the user can fix; its message names the bad value and what would be valid."""


class TrainingDiverged(ConfigError):
    """The loss or the weights went non-finite (a too-high learning rate, most often); nothing non-finite is saved."""


class CannotWrite(ConfigError):
    """A file of the run could not be written (the disk is full, the folder read-only); older files are kept."""


class RunStopped(BaseException):
    """The run stopped early on request (SIGTERM) after saving a checkpoint; the message says how to resume.

    A BaseException, like UserExit, so Hydra's job runner lets it through without a report of its own.
    """


class SweepFailed(BaseException):
    """A -m sweep ran every run it could and some failed; the message names them. Raised after the sweep's summary."""


class UserExit(BaseException):
    """A user error leaving a Hydra job: Hydra's job runner would add its own line for an Exception."""


def exits_on_user_error(task):
    """Wrap a Hydra task function so that a user error leaves it as UserExit, for run_cli to print as one line."""
    import functools

    @functools.wraps(task)
    def wrapped(cfg):
        try:
            return task(cfg)
        except Exception as exc:
            message = user_error_message(exc)
            if message is None:
                raise
            raise UserExit(message) from None

    return wrapped


EXTRAS = {  # an optional package -> (the extra of pyproject.toml that installs it, the setting that needs it)
    "optuna": ("optuna", "hparams_search=optuna"),
    "hydra_plugins.hydra_optuna_sweeper": ("optuna", "hparams_search=optuna"),
    "submitit": ("slurm", "hydra/launcher=slurm"),
    "hydra_plugins.hydra_submitit_launcher": ("slurm", "hydra/launcher=slurm"),
    "wandb": ("wandb", "logger=wandb"),
    "tensorboard": ("tensorboard", "logger=tensorboard"),
    "tensorboardX": ("tensorboard", "logger=tensorboard"),
    "mlflow": ("mlflow", "logger=mlflow"),
    "sklearn": ("metrics", "metrics=[mig,dci]"),
}
HYDRA_PLUGINS = {  # a Hydra plugin's config group option -> the package that brings it
    "hydra/sweeper=optuna": "hydra_plugins.hydra_optuna_sweeper",
    "hydra/launcher=submitit_slurm": "hydra_plugins.hydra_submitit_launcher",
    "hydra/launcher=submitit_local": "hydra_plugins.hydra_submitit_launcher",
}


LIBRARY_REFUSALS = {  # the words of a library's refusal that a user caused -> our one line
    "Only one of --run, --multirun, --cfg": "-m (--multirun) and --cfg cannot be given together: drop -m to print "
    "the config (--cfg job, --cfg hydra), or --cfg to run the sweep",
    'Could not detect "srun"': "hydra/launcher=slurm submits SLURM jobs, but this machine has no srun: run it on "
    "a SLURM cluster's login node, or try the sweep here with hydra/launcher=submitit_local",
}


def extra_message(extra: str, feature: str) -> str:
    return f"{feature} needs the optional extra '{extra}': pip install 'vae-zoo[{extra}]' (in a checkout: pip install -e '.[{extra}]')"


def require_extra(extra: str, module: str, feature: str) -> None:
    """Refuse `feature` with one line naming its extra when `module` is not installed."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigError(extra_message(extra, feature))


def missing_extra_message(exc: BaseException) -> str | None:
    """An optional package that is not installed, met anywhere along `exc`'s chain, as one line naming its extra."""
    for cause in causes(exc):
        if not isinstance(cause, ImportError):
            continue
        name = cause.name or ""
        found = next((m for m in EXTRAS if name == m or name.startswith(m + ".")), None)
        if found is None:  # Lightning's own words for tensorboard: "Neither `tensorboard` nor `tensorboardX` ..."
            found = next((m for m in EXTRAS if f"`{m}`" in str(cause)), None)
        if found is not None:
            return extra_message(*EXTRAS[found])
    return None


def find_config_error(exc: BaseException | None) -> ConfigError | None:
    """The ConfigError behind `exc`, if any (Hydra's instantiate wraps what a constructor raises)."""
    while exc is not None:
        if isinstance(exc, ConfigError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def check_int(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """`value` as an int in [minimum, maximum], or a ConfigError that names `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum is not None and value > maximum):
        within = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise ConfigError(f"{name}={value} is invalid: it must be an integer {within}")
    return value


def check_number(name: str, value: object, minimum: float) -> float:
    """`value` as a finite float >= minimum (NaN and infinity are refused), or a ConfigError that names `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < minimum:
        raise ConfigError(f"{name}={value} is invalid: it must be a finite number >= {minimum}")
    return float(value)


def divergence_message(step: int, term: str, value: float, lr: float, beta: float, inputs_finite: bool) -> str:
    """Why the loss went non-finite at `step`, naming the cause: the data, beta, or the learning rate."""
    head = f"training diverged at step {step}: {term} is {value}"
    kept = "the checkpoints saved before this step are kept"
    if not inputs_finite:
        return f"{head}; the input batch holds NaN or inf: check the data; {kept}"
    if not math.isfinite(beta) or term == "loss":  # rec and kl are finite: beta * kl overflowed
        return f"{head} with beta = {beta:g}: lower the KL weight (beta.*); {kept}"
    if step == 0:
        return f"{head} before any update, so not the learning rate: check the data and the model settings"
    return f"{head}; lower optimizer.lr (now {lr:g}); {kept}"


MOVED_OPTIONS = {  # old spellings users may have in their scripts -> the new one
    "beta=capacity": "objective=capacity, an objective of its own (objective.gamma, objective.max_capacity, "
    "objective.capacity_steps): the capacity target is not a KL weight schedule",
}


def user_error_message(exc: BaseException, before_job: bool = False) -> str | None:
    """One line for an error the user caused (ours, Hydra's, Lightning's Trainer's, a full disk), else None.

    `before_job`: raised before the task function ran, where an OSError can only be Hydra making the run folder.
    """
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException

    config_error = find_config_error(exc)
    if config_error is not None:
        return str(config_error)
    missing = missing_extra_message(exc)
    if missing is not None:
        return missing
    refusal = next((line for words, line in LIBRARY_REFUSALS.items() if any(words in str(e) for e in causes(exc))), None)
    if refusal is not None:
        return refusal
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file and exc.options is not None:
        group, _, choice = exc.missing_cfg_file.rpartition("/")
        plugin = HYDRA_PLUGINS.get(f"{group}={choice}")
        if plugin is not None:  # a Hydra plugin that is an extra of ours
            return extra_message(*EXTRAS[plugin])
        if f"{group}={choice}" in MOVED_OPTIONS:
            return f"{group}={choice} is now {MOVED_OPTIONS[f'{group}={choice}']}"
        return f"{group}={choice} is not an option: choose one of {', '.join(sorted(exc.options))}"
    unknown = unknown_key_message(exc)
    if unknown is not None:
        return unknown
    if isinstance(exc, ValueError) and str(exc).startswith("Config group override must be a string or a list"):
        return null_group_message()
    if isinstance(exc, (ConfigCompositionException, OverrideParseException)):
        lines = [line.strip().rstrip(".") for line in str(exc).splitlines() if line.strip()]
        return "; ".join(lines[:2])  # Hydra's own words; the rest is its search path
    disk_full = next((e for e in causes(exc) if isinstance(e, OSError) and e.errno in DISK_FULL), None)
    if disk_full is not None:  # torch wraps it in a RuntimeError of its own: look along the chain
        where = f"writing {disk_full.filename}" if disk_full.filename else "writing the run folder"
        return f"{disk_full.strerror} while {where}: free some space or choose another folder (hydra.run.dir=...)"
    if isinstance(exc, OSError) and exc.filename and (exc.errno in UNWRITABLE or before_job):
        # Hydra creates the run folder before our code runs; any other write we make is wrapped already
        return f"{exc.filename} cannot be written ({exc.strerror}): choose a folder you can write (hydra.run.dir=...)"
    return instantiate_error_message(exc)


def null_group_message() -> str:
    """Hydra refuses `group=null` for a group a preset (experiment=...) chose; `~group` is its way to drop it."""
    import sys

    nulled = [arg.split("=")[0] for arg in sys.argv[1:] if re.fullmatch(r"[\w/]+=(null|None)", arg)]
    group = nulled[0] if nulled else "group"
    return (
        f"{group}=null cannot drop a {group} that a preset (experiment=...) chose: "
        f"write ~{group} to run without one, or pick another ({group}=<option>)"
    )


def causes(exc: BaseException | None):
    """`exc` and the exceptions it was raised from or while handling."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def library_words(exc: BaseException) -> str:
    """What a library said, on one line: the cause Hydra's instantiate wraps, else the exception itself."""
    from hydra.errors import InstantiationException

    if isinstance(exc, InstantiationException) and (exc.__cause__ or exc.__context__) is not None:
        exc = exc.__cause__ or exc.__context__
    return " ".join(str(exc).split()) or type(exc).__name__


def instantiate_error_message(exc: BaseException) -> str | None:
    """A config node whose target refused its arguments (Hydra's instantiate), in the target's own words."""
    from hydra.errors import InstantiationException

    if not isinstance(exc, InstantiationException):
        return None
    key = re.search(r"full_key: (\S+)", str(exc))
    target = re.search(r"target '([^']+)'", str(exc))
    where = key.group(1) if key else "a config node"
    return f"{where} is refused by {target.group(1) if target else 'its target'}: {library_words(exc)}"


def trainer_refusal(exc: BaseException, trainer_cfg) -> str:
    """Lightning's Trainer refusing a `trainer.` setting, in Lightning's words, naming the setting and its value."""
    import difflib
    import inspect

    import lightning as L

    words = library_words(exc)
    unknown = re.search(r"unexpected keyword argument '(\w+)'", words)
    if unknown:
        near = difflib.get_close_matches(unknown.group(1), list(inspect.signature(L.Trainer.__init__).parameters))
        hint = f"did you mean {' or '.join(f'trainer.{name}' for name in near)}? " if near else ""
        listed = "`help(lightning.Trainer)` lists them"
        return f"trainer.{unknown.group(1)} is not an argument of Lightning's Trainer: {hint}{listed}"
    named = [key for key in trainer_cfg if re.search(rf"\b{re.escape(str(key))}\b", words, re.IGNORECASE)]
    if named:  # `Trainer(devices=0)` names devices, though it says which accelerator too
        key = max(named, key=lambda key: (f"{key}=" in words, f"`{key}`" in words, len(str(key))))
        return f"trainer.{key}={trainer_cfg[key]} is invalid: {words}"
    return f"the trainer settings are refused by Lightning: {words}"


def trainer_type_error(trainer_cfg) -> str | None:
    """A `trainer.` value of a type Lightning's Trainer does not take (`max_epochs=abc`), which it would only
    trip over mid-run; judged from the Trainer's own type annotations."""
    import inspect
    import types
    import typing

    import lightning as L

    def accepts(annotation, value) -> bool:
        if annotation is inspect.Parameter.empty or annotation is typing.Any:
            return True
        if typing.get_origin(annotation) is typing.Literal:  # the type is judged here, the value by Lightning
            return any(type(value) is type(choice) for choice in typing.get_args(annotation))
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            return any(accepts(arg, value) for arg in typing.get_args(annotation))
        origin = typing.get_origin(annotation) or annotation
        if not isinstance(origin, type):
            return True  # a form we do not judge
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if origin is float:
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if origin is int:
            return isinstance(value, int) and not isinstance(value, bool)
        if value is None or isinstance(value, (str, int, float, bool)):
            return isinstance(value, origin)
        return True  # lists, dicts and objects: left to Lightning

    parameters = inspect.signature(L.Trainer.__init__).parameters
    for key, value in trainer_cfg.items():
        if isinstance(value, float) and not math.isfinite(value):
            return f"trainer.{key}={value} is invalid: it must be a finite number"
        if key in parameters and not accepts(parameters[key].annotation, value):
            shown = str(parameters[key].annotation).replace("typing.", "").replace("NoneType", "None")
            return f"trainer.{key}={value} is invalid: Lightning's Trainer takes {shown} there"
    return None


def unknown_key_message(exc: BaseException) -> str | None:
    """An override of a key the config does not have (a typo), with the nearest real keys."""
    import difflib

    from hydra.errors import ConfigCompositionException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    cause = exc.__cause__
    if not isinstance(exc, ConfigCompositionException) or not isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
        return None
    if "not in struct" not in str(cause):
        return None
    parent, _, _ = str(cause.full_key).rpartition(".")
    siblings = list(cause.parent_node.keys()) if cause.parent_node is not None else []
    near = [f"{parent}.{key}" if parent else str(key) for key in difflib.get_close_matches(str(cause.key), siblings)]
    hint = f"did you mean {' or '.join(near)}? " if near else ""
    return (
        f"{cause.full_key} is not a config key: {hint}`--cfg job` prints the config "
        f"(+{cause.full_key}=<value> adds a new one)"
    )

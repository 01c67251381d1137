"""User errors: a bad value on the command line, a missing file. Reported as one line, no traceback."""

import errno

EXIT_USER_ERROR = 2
EXIT_STOPPED = 143  # 128 + SIGTERM: what a shell reports for a terminated job, so `&&` chains and schedulers see it
UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST, errno.ENOSPC}  # an OSError's errno


class ConfigError(ValueError):
    """A problem the user can fix; its message names the bad value and what would be valid."""


class TrainingDiverged(ConfigError):
    """The loss or the weights went non-finite (a too-high learning rate, most often); nothing non-finite is saved."""


class RunStopped(BaseException):
    """The run stopped early on request (SIGTERM) after saving a checkpoint; the message says how to resume.

    A BaseException, like UserExit, so Hydra's job runner lets it through without a report of its own.
    """


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


def find_config_error(exc: BaseException | None) -> ConfigError | None:
    """The ConfigError behind `exc`, if any (Hydra's instantiate wraps what a constructor raises)."""
    while exc is not None:
        if isinstance(exc, ConfigError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def check_int(name: str, value: object, minimum: int) -> int:
    """`value` as an int >= minimum, or a ConfigError that names `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}={value} is invalid: it must be an integer >= {minimum}")
    return value


def check_number(name: str, value: object, minimum: float) -> float:
    """`value` as a float >= minimum, or a ConfigError that names `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigError(f"{name}={value} is invalid: it must be a number >= {minimum}")
    return float(value)


def user_error_message(exc: BaseException) -> str | None:
    """One line for an error the user caused (ours or Hydra's composition errors), else None."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException

    config_error = find_config_error(exc)
    if config_error is not None:
        return str(config_error)
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file and exc.options is not None:
        group, _, choice = exc.missing_cfg_file.rpartition("/")
        return f"{group}={choice} is not an option: choose one of {', '.join(sorted(exc.options))}"
    unknown = unknown_key_message(exc)
    if unknown is not None:
        return unknown
    if isinstance(exc, (ConfigCompositionException, OverrideParseException)):
        lines = [line.strip().rstrip(".") for line in str(exc).splitlines() if line.strip()]
        return "; ".join(lines[:2])  # Hydra's own words; the rest is its search path
    if isinstance(exc, OSError) and exc.filename and exc.errno in UNWRITABLE:
        # Hydra creates the run folder before our code runs; any other write we make is wrapped already
        return f"{exc.filename} cannot be written ({exc.strerror}): choose a folder you can write (hydra.run.dir=...)"
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


def run_cli(main) -> int:
    """Run a `@hydra.main` function; a user error exits 2 with one line on stderr, a bug keeps its traceback.

    A run stopped by SIGTERM exits 143 with one line on stderr that says how to resume it.
    """
    import os
    import sys

    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # let errors reach us instead of Hydra's multi-line report
    try:
        main()
    except RunStopped as stop:
        print(stop, file=sys.stderr)
        return EXIT_STOPPED
    except UserExit as exc:  # from inside a job
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as exc:  # Hydra's composition errors, before any job starts
        message = user_error_message(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0

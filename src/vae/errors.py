"""User errors: a bad value on the command line, a missing file. Reported as one line, no traceback."""

EXIT_USER_ERROR = 2
EXIT_STOPPED = 143  # 128 + SIGTERM: what a shell reports for a terminated job, so `&&` chains and schedulers see it


class ConfigError(ValueError):
    """A problem the user can fix; its message names the bad value and what would be valid."""


class TrainingDiverged(ConfigError):
    """The loss or the weights went non-finite (a too-high learning rate, most often); nothing non-finite is saved."""


class RunStopped(Exception):
    """The run stopped early on request (SIGTERM) after saving a checkpoint; the message says how to resume."""


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
    if isinstance(exc, (ConfigCompositionException, OverrideParseException)):
        lines = [line.strip().rstrip(".") for line in str(exc).splitlines() if line.strip()]
        return "; ".join(lines[:2])  # Hydra's own words; the rest is its search path
    return None


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
    except Exception as exc:
        message = user_error_message(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0

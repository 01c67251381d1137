"""SIGTERM outside the steps of fitting: a line that says what was kept and how to go on.

`stop_on_sigterm` turns the SIGTERMException with which Lightning ends fit into that line (the
checkpoint was saved by `vae.run_state.RunState`); `stop_testing_on_sigterm` stops the test phase
at once. The run then exits with code 143 (`vae.cli.run_cli`).
"""

import contextlib
import signal
import threading
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

from vae.errors import RunStopped, train_command


@contextlib.contextmanager
def stop_on_sigterm(trainer: L.Trainer, run_dir: Path):
    """Lightning ends fit with SIGTERMException after SIGTERM; say what was kept and how to go on."""
    try:
        yield
    except SIGTERMException:
        if trainer.global_step == 0:
            raise RunStopped("stopped by SIGTERM before the first training step: nothing to resume") from None
        raise RunStopped(
            f"stopped by SIGTERM at step {trainer.global_step}; resume with: {train_command()} resume={run_dir}"
        ) from None


@contextlib.contextmanager
def stop_testing_on_sigterm(trainer: L.Trainer, run_dir: Path):
    """After fitting, SIGTERM stops the test phase at once with a line that says how to redo it.

    Lightning's own handler lives only while fit or test runs, and calls the handler it found:
    this one, which ends the run wherever it is (nothing is left to save: last.ckpt holds the end
    of training, and a resume from it runs only the test phase, drawing what this run would have).
    """
    if not in_main_thread():
        yield
        return

    def stop(signum, frame):
        raise RunStopped(
            f"stopped by SIGTERM at step {trainer.global_step}, in the test phase; resume with: "
            f"{train_command()} resume={run_dir}"
        )

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def in_main_thread() -> bool:
    """Signal handlers can be set only there (a run in a thread of a notebook or a launcher has none of its own)."""
    return threading.current_thread() is threading.main_thread()

"""Runs of `src/train.py` in the background, for tests that kill or stop them: start, wait_until, finish.

`Throttle` slows each training step (`+callbacks.throttle._target_=background.Throttle`), so a
test can act mid-epoch; runs started here find it because `start` puts tests/ on PYTHONPATH.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import lightning as L

ROOT = Path(__file__).resolve().parents[1]


class Throttle(L.Callback):
    """`seconds` a training step; with `test_seconds`, a test step too, and a file `testing` in the run
    folder when the test phase starts, so a test can stop the run there."""

    def __init__(self, seconds: float, test_seconds: float = 0.0):
        self.seconds, self.test_seconds = seconds, test_seconds

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        time.sleep(self.seconds)

    def on_test_start(self, trainer, pl_module):
        if self.test_seconds:
            (Path(trainer.default_root_dir) / "testing").touch()

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        time.sleep(self.test_seconds)


def start(cwd: Path, *args: str) -> subprocess.Popen:
    """`src/train.py` in the background; stderr goes to a file (a pipe nobody reads could fill and block it)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT / "tests")}
    env.pop("WANDB_SERVICE", None)  # its own W&B service, not the one an in-process test left in this process's env
    stderr = open(cwd / f"stderr-{time.monotonic_ns()}.txt", "w+")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "src" / "train.py"), *args],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
    )  # fmt: skip
    process.stderr_file = stderr
    return process


def finish(process: subprocess.Popen, timeout: float = 240) -> tuple[int, str]:
    """Wait for the run to end: (exit code, stderr)."""
    code = process.wait(timeout=timeout)
    process.stderr_file.seek(0)
    err = process.stderr_file.read()
    process.stderr_file.close()
    return code, err


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    """Until `path` exists; fails if the run ends first."""
    wait_until(path.exists, process, f"{path} to appear", timeout)


def wait_until(condition, process: subprocess.Popen, what: str, timeout: float = 120) -> None:
    """Until `condition()` holds; fails if the run ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the run ended before {what}:\n{finish(process)[1][-3000:]}"
        assert time.monotonic() < deadline, f"waited {timeout}s for {what}"
        time.sleep(0.02)

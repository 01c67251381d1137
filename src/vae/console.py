"""The console and train.log: one line per epoch, a progress bar only on a terminal, no library noise.

`EpochSummary` logs `epoch 3/50  step 375  train/loss 120.31  val/elbo -118.20 ...` through Python
logging, so the line reaches the console and train.log alike (Hydra's job_logging, conf/train.yaml);
it also writes where a run resumed from, and why and where it stopped, into train.log.
`TerminalProgressBar` is Lightning's tqdm bar when stdout is a terminal and nothing otherwise, so a
log file never fills with carriage-return redraws. `Progress` does the same for a long loop of our own
(log p(x) in the test phase and in vae-eval): a bar on a terminal, a log line every 30 s. `LibraryNoise` is the logging filter that drops
Lightning's advertisement and the warnings of its own code a user cannot act on (`WARNINGS`).
"""

import contextlib
import datetime
import logging
import sys
import time
import warnings

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar

from vae.errors import train_command

log = logging.getLogger(__name__)
file_log = logging.getLogger("vae.stop")  # train.log only (conf/train.yaml): the console gets run_cli's own line

NOISE = ("💡 Tip:", "litlogger")  # a message holding any of these is dropped
WARNINGS = (  # the warnings of Lightning's own code that say nothing a user can act on
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",  # Lightning's pytree code on torch >= 2.9
)


class LibraryNoise(logging.Filter):
    """Drops the log records of libraries that say nothing about this run (Lightning's tips).

    Hydra builds one for its logging setup, before Lightning is imported: it also silences the
    warnings of WARNINGS, which name Lightning's code, not ours.
    """

    def __init__(self):
        super().__init__()
        for message in WARNINGS:
            warnings.filterwarnings("ignore", message=message)

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not any(noise in message for noise in NOISE)


def quiet_libraries() -> None:
    """For the Python API, what Hydra's job_logging does for the commands: no library tips or warnings that a
    user cannot act on (`LibraryNoise`), on the console handler Lightning adds when nothing else logs."""
    noise = LibraryNoise()
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, LibraryNoise) for f in handler.filters):
                handler.addFilter(noise)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(noise)  # also where the root logger prints


class TerminalProgressBar(TQDMProgressBar):
    """Lightning's tqdm progress bar, shown only when stdout is a terminal: redirected output gets the
    epoch lines of `EpochSummary` instead of carriage-return redraws."""

    def setup(self, trainer, pl_module, stage):
        super().setup(trainer, pl_module, stage)
        if not sys.stdout.isatty():
            self.disable()


class EpochSummary(L.Callback):
    """One log line per training epoch: its mean training loss, the validation metrics, beta and the time.

    `metrics` are the validation metrics shown when the epoch validated (`check_val_every_n_epoch`).
    """

    def __init__(self, metrics: tuple[str, ...] = ("val/elbo", "val/rec", "val/kl")):
        self.metrics = tuple(metrics)
        self.loss_sum, self.batches, self.validated, self.start = None, 0, False, 0.0

    def on_train_start(self, trainer, pl_module):
        if trainer.ckpt_path and trainer.is_global_zero:
            log.info("resumed from %s at epoch %d, step %d", trainer.ckpt_path, trainer.current_epoch + 1,
                     trainer.global_step)  # fmt: skip
        self.on_train_epoch_start(trainer, pl_module)  # a run resumed mid-epoch starts without an epoch start

    def on_train_epoch_start(self, trainer, pl_module):
        self.loss_sum, self.batches, self.validated, self.start = None, 0, False, time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        steps = outputs.get("steps", 1) if isinstance(outputs, dict) else 1  # a call may take several (steps_per_call)
        loss = (outputs["loss"] if isinstance(outputs, dict) else outputs).detach()
        if steps != 1:
            loss = loss * steps
        self.loss_sum = loss if self.loss_sum is None else self.loss_sum + loss  # on the device: no sync per step
        self.batches += steps

    def on_validation_epoch_end(self, trainer, pl_module):
        self.validated = not trainer.sanity_checking

    def on_train_epoch_end(self, trainer, pl_module):  # after the epoch's validation
        if trainer.is_global_zero:
            log.info("%s", self.line(trainer))

    def line(self, trainer: L.Trainer) -> str:
        parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}", f"step {trainer.global_step}"]
        if self.batches:
            parts.append(f"train/loss {float(self.loss_sum) / self.batches:.2f}")
        shown = [name for name in self.metrics if self.validated and name in trainer.callback_metrics]
        parts += [f"{name} {float(trainer.callback_metrics[name]):.2f}" for name in shown]
        if "train/beta" in trainer.callback_metrics:
            parts.append(f"beta {float(trainer.callback_metrics['train/beta']):.3g}")
        parts.append(f"{time.perf_counter() - self.start:.1f} s")
        return "  ".join(parts)

    def on_exception(self, trainer, pl_module, exception):
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if not trainer.is_global_zero:
            return
        if isinstance(exception, SIGTERMException):
            file_log.warning("stopped by SIGTERM at step %d; resume with: %s resume=%s",
                             trainer.global_step, train_command(), trainer.default_root_dir)  # fmt: skip
        else:
            file_log.error("stopped at step %d: %s", trainer.global_step, exception)



class Progress:
    """A long loop's progress: a tqdm bar when stderr is a terminal, and a log line at least every `every` seconds
    (`log p(x), k=1000: 120/500 images, 3.1 images/s, 0:02:03 left`), which reaches train.log and redirected output.

    `with Progress("log p(x), k=1000", total=500, unit="images") as progress: ... progress.advance(n)`;
    a total of 0 shows and logs nothing.
    """

    def __init__(self, desc: str, total: float, unit: str = "images", every: float = 30.0, clock=time.monotonic):
        self.desc, self.total, self.unit, self.every, self.clock = desc, total, unit, every, clock
        self.done, self.bar, self.quiet_logs = 0.0, None, contextlib.ExitStack()

    def __enter__(self) -> "Progress":
        self.start = self.last = self.clock()
        if self.total and sys.stderr.isatty():
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            self.bar = tqdm(total=self.total, desc=self.desc, unit=f" {self.unit}", leave=False, dynamic_ncols=True)
            self.quiet_logs.enter_context(logging_redirect_tqdm())  # log lines above the bar, not through it
        return self

    def advance(self, n: float) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        now = self.clock()
        if self.total and now - self.last >= self.every:
            self.last = now
            log.info("%s", self.line(now - self.start))

    def line(self, elapsed: float) -> str:
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        shown = str(datetime.timedelta(seconds=round(left))) if left == left else "?"
        return f"{self.desc}: {self.done:.0f}/{self.total:.0f} {self.unit}, {rate:.3g} {self.unit}/s, {shown} left"

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
        self.quiet_logs.close()
        elapsed = self.clock() - self.start
        if self.total and elapsed >= self.every and not any(exc):  # a long loop says when it ended
            log.info("%s: %.0f %s in %.0f s", self.desc, self.done, self.unit, elapsed)

"""The private Lightning internals this project relies on, each in one place with a test that pins it
(tests/test_compat.py; those of `steps_per_call`: tests/test_steps_per_call.py), so that a Lightning
upgrade fails loudly here and nowhere else."""

import copy
import csv
import math
import os
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.trainer.connectors.logger_connector.result import _ResultMetric
from lightning.pytorch.utilities import rank_zero_only

from vae.files import atomic_write

HOOK_NAME = "_current_fx_name"  # the LightningModule attribute Lightning sets to the name of the hook it calls


def spare_cuda_probes() -> None:
    """Stop torch probing for a GPU at every optimiser step where there is none.

    Importing Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1, so that `torch.cuda.is_available()` asks NVML
    rather than initialising CUDA (which a fork could not inherit). Until CUDA is initialised that answer is
    not cached, and `torch.optim.Adam.step` asks every step (its graph-capture check): on a machine without a
    GPU each call loads NVML anew, 0.1-0.3 ms, a tenth of a small model's CPU step. Where no GPU is visible
    there is nothing for a fork to lose, and torch's default check answers from CUDA's cached count.
    """
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and torch.cuda.device_count() == 0:
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]


def log_without_needless_moves() -> None:
    """Skip Lightning's move of a logged metric's state to the device it is on already.

    Each `self.log` calls `_ResultMetric.to(value.device)`, which rebuilds the metric module's attributes
    through `apply_to_collection` (dataclasses deep-copied): 0.1-0.3 ms a call on this CPU, five or six calls
    every `log_every_n_steps`, about 5% of a small model's step. Where every tensor of the state is on that
    device, the move would change nothing, and is skipped; any other call moves as Lightning does.
    """
    if getattr(_ResultMetric.to, "move", None):
        return  # done already
    move = _ResultMetric.to

    def to(self, *args, **kwargs):
        if len(args) == 1 and not kwargs and isinstance(args[0], torch.device) and all_on(self.__dict__, args[0]):
            return self
        return to.move(self, *args, **kwargs)

    to.move = move  # type: ignore[attr-defined]
    _ResultMetric.to = to  # type: ignore[method-assign]


def all_on(attributes: dict, device: torch.device) -> bool:
    """Whether every tensor among these attributes, and one level into their dicts, lists and tuples, is on `device`."""
    for value in attributes.values():
        if isinstance(value, torch.Tensor):
            if value.device != device:
                return False
        elif isinstance(value, (dict, list, tuple)) and value:
            for inner in value.values() if isinstance(value, dict) else value:
                if isinstance(inner, torch.Tensor) and inner.device != device:
                    return False
    return True


def should_write_step_logs(trainer: L.Trainer) -> bool:
    """Whether this training step's logged values will be written (every `log_every_n_steps`)."""
    return trainer._logger_connector.should_update_logs


def steps_before_boundary(trainer: L.Trainer, most: int) -> int:
    """How many optimiser steps one call of Lightning's loop may take (1 to `most`) without passing a step
    at which Lightning acts between calls: step logs, step checkpoints, validation, the epoch's end,
    `max_steps`; calls also end on multiples of `most`. Called in a call whose first batch is counted."""
    step = trainer.global_step
    periods = [most, trainer.log_every_n_steps]
    periods += [c._every_n_train_steps for c in trainer.checkpoint_callbacks if c._every_n_train_steps > 0]
    left = min(p - step % p for p in periods)
    progress = trainer.fit_loop.epoch_loop.batch_progress
    done = progress.current.ready - 1  # batches of this epoch before this call
    if math.isfinite(trainer.num_training_batches):
        left = min(left, trainer.num_training_batches - done)
    every = trainer.val_check_batch
    if every is not None and math.isfinite(every) and trainer._val_check_time_interval is None:
        counted = progress.total.ready - 1 if trainer.check_val_every_n_epoch is None else done
        left = min(left, int(every) - counted % int(every))
    if trainer.max_steps >= 0:
        left = min(left, trainer.max_steps - step)
    return max(1, left)


def count_another_batch(trainer: L.Trainer) -> None:
    """Within one call, tell Lightning's loop that the previous batch is done and another begins, as its
    own loop would between calls: its batch counts (epoch end, validation, resume) and log step stay per batch."""
    loop = trainer.fit_loop.epoch_loop
    loop.batch_progress.increment_processed()
    loop.batch_progress.increment_completed()
    loop.batch_progress.increment_ready()
    loop.batch_progress.increment_started()
    loop._batches_that_stepped += 1


def epoch_ends(trainer: L.Trainer, dataloader_iter) -> bool:
    """Whether this call took the epoch's last batch (where Lightning steps the per-epoch schedules)."""
    return dataloader_iter.done or trainer.fit_loop.epoch_loop._num_ready_batches_reached()


AUTOMATIC = "epoch_loop.automatic_optimization.optim_progress"
MANUAL = "epoch_loop.manual_optimization.optim_step_progress"


def carry_step_count(checkpoint: dict, automatic: bool) -> None:
    """Lightning counts optimiser steps in one place for automatic optimisation and another for manual
    (steps_per_call > 1): move a checkpoint's count to where this run reads its `global_step` from."""
    loop = (checkpoint.get("loops") or {}).get("fit_loop")
    if not loop or AUTOMATIC not in loop or MANUAL not in loop:
        return
    steps = loop[AUTOMATIC]["optimizer"]["step"]
    if automatic and steps["total"]["completed"] == 0:
        loop[AUTOMATIC]["optimizer"]["step"] = copy.deepcopy(loop[MANUAL])
        loop[AUTOMATIC]["optimizer"]["zero_grad"] = {
            part: counts | {"started": counts["ready"]} for part, counts in copy.deepcopy(loop[MANUAL]).items()
        }
    elif not automatic and loop[MANUAL]["total"]["completed"] == 0:
        loop[MANUAL] = copy.deepcopy(steps)


class AppendingCSVLogger(CSVLogger):
    """Lightning's CSVLogger, except that an existing metrics.csv is continued, never deleted."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = AppendingWriter(log_dir=self.log_dir)
        return self._experiment

    @rank_zero_only
    def drop_rows_from(self, step: int) -> None:
        """Forget rows logged at `step` or later: the resumed run logs them again."""
        path = Path(self.log_dir) / ExperimentWriter.NAME_METRICS_FILE
        if not path.is_file():
            return
        with open(path, newline="") as file:
            reader = csv.DictReader(file)
            header, rows = reader.fieldnames or [], [row for row in reader if int(float(row["step"])) < step]
        with atomic_write(path, newline="") as file:
            writer = csv.DictWriter(file, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)


class AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        # Lightning's deletes an existing metrics.csv here; we read its header instead, and append
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])


def validates_after_this_batch(trainer: L.Trainer) -> bool:
    """Whether Lightning runs validation right after the training batch that just ended (its own decision)."""
    return trainer.fit_loop.epoch_loop._should_check_val_fx(trainer.fit_loop._data_fetcher)


def hold_back_sigterm(trainer: L.Trainer) -> None:
    """Hide a SIGTERM that arrived from Lightning's loops, which would stop halfway through a validation."""
    trainer._signal_connector.received_sigterm = False


def release_sigterm(trainer: L.Trainer) -> None:
    """Hand a held-back SIGTERM to Lightning again: it stops at its next check, as if it had just arrived."""
    trainer._signal_connector.received_sigterm = True

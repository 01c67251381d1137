"""The private Lightning internals this project relies on, each in one place with a test that pins it
(tests/test_compat.py), so that a Lightning upgrade fails loudly here and nowhere else."""

import csv
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from vae.files import atomic_write


def should_write_step_logs(trainer: L.Trainer) -> bool:
    """Whether this training step's logged values will be written (every `log_every_n_steps`)."""
    return trainer._logger_connector.should_update_logs


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

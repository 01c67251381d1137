"""The private Lightning internals this project relies on, each in one place with a test that pins it
(tests/test_compat.py), so that a Lightning upgrade fails loudly here and nowhere else."""

import lightning as L


def should_write_step_logs(trainer: L.Trainer) -> bool:
    """Whether this training step's logged values will be written (every `log_every_n_steps`)."""
    return trainer._logger_connector.should_update_logs

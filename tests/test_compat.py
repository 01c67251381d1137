"""Pins the private Lightning behaviour vae.compat relies on: an upgrade that changes it fails here."""

import inspect
import os

import lightning as L
import lightning.fabric
import torch

from vae.compat import HOOK_NAME, should_write_step_logs, spare_cuda_probes


class Recorder(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.seen: list[bool] = []
        self.hooks: set[str] = set()

    def training_step(self, batch, batch_idx):
        self.seen.append(should_write_step_logs(self.trainer))
        self.hooks.add(getattr(self, HOOK_NAME))
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_step_logs_are_written_every_log_every_n_steps():
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(12, 2)), batch_size=1)
    module = Recorder()
    trainer = L.Trainer(
        max_epochs=1, log_every_n_steps=3, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(module, data)
    assert module.seen == [(step + 1) % 3 == 0 for step in range(12)]
    assert module.hooks == {"training_step"}  # vae.system.System sets HOOK_NAME without nn.Module's checks


def test_lightning_has_torch_ask_nvml_for_a_gpu_and_without_one_torch_asks_cuda(monkeypatch):
    """Lightning's variable makes torch load NVML at each optimiser step until CUDA starts; spare_cuda_probes
    drops it only where no GPU is visible."""
    assert 'os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"' in inspect.getsource(lightning.fabric)
    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    gpus = torch.cuda.device_count()
    spare_cuda_probes()
    assert ("PYTORCH_NVML_BASED_CUDA_CHECK" in os.environ) == (gpus > 0)
    assert torch.cuda.is_available() == (gpus > 0)


def test_the_appending_csv_logger_continues_an_existing_metrics_file(tmp_path):
    from vae.compat import AppendingCSVLogger

    first = AppendingCSVLogger(save_dir=str(tmp_path), name="", version="")
    first.log_metrics({"train/loss": 1.0}, step=0)
    first.log_metrics({"train/loss": 0.5}, step=1)
    first.save()
    second = AppendingCSVLogger(save_dir=str(tmp_path), name="", version="")  # a resumed run's logger
    second.drop_rows_from(1)  # step 1 is logged again by the resumed run
    second.log_metrics({"train/loss": 0.4}, step=1)
    second.save()
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0].split(",") == ["step", "train/loss"] and [r.split(",")[1] for r in rows[1:]] == ["1.0", "0.4"]


class Logger(L.LightningModule):
    """Logs three figures a step, one of them shown in the progress bar, and an epoch mean."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        self.log_dict({"train/loss": loss, "train/half": loss / 2}, on_step=True, prog_bar=True)
        self.log("train/mean", loss, on_step=False, on_epoch=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def logged_rows(tmp_path) -> list[str]:
    torch.manual_seed(0)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(12, 2)), batch_size=2)
    logger = L.pytorch.loggers.CSVLogger(tmp_path, name="", version="")
    trainer = L.Trainer(max_epochs=2, log_every_n_steps=2, logger=logger, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")  # fmt: skip
    trainer.fit(Logger(), data)
    return (tmp_path / "metrics.csv").read_text().splitlines()


def test_logging_skips_only_moves_that_change_nothing(tmp_path, monkeypatch):
    """Lightning moves a logged metric to the value's device at each self.log; the skip keeps every row."""
    from lightning.pytorch.trainer.connectors.logger_connector.result import _ResultMetric

    from vae.compat import log_without_needless_moves

    log_without_needless_moves()
    skipping, move = _ResultMetric.to, _ResultMetric.to.move
    with monkeypatch.context() as lightnings:
        lightnings.setattr(_ResultMetric, "to", move)
        expected = logged_rows(tmp_path / "lightning")
    calls, moves = [], []
    monkeypatch.setattr(_ResultMetric, "to", lambda *a, **k: calls.append(a[1:]) or skipping(*a, **k))
    monkeypatch.setattr(skipping, "move", lambda *a, **k: moves.append(a[1:]) or move(*a, **k))
    assert logged_rows(tmp_path / "skipping") == expected and len(expected) > 3
    assert calls.count((torch.device("cpu"),)) >= 6 * 3  # Lightning moves each logged metric at each self.log ...
    assert (torch.device("cpu"),) not in moves  # ... to the device it is on: a move that is skipped

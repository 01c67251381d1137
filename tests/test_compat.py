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

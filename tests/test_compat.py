"""Pins the private Lightning behaviour vae.compat relies on: an upgrade that changes it fails here."""

import lightning as L
import torch

from vae.compat import should_write_step_logs


class Recorder(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.seen: list[bool] = []

    def training_step(self, batch, batch_idx):
        self.seen.append(should_write_step_logs(self.trainer))
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

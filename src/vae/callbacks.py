"""Pictures of the model during training: PNG grids in the run folder, sent to every attached logger."""

import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torch import Tensor
from torchvision.utils import make_grid, save_image


class ImageGrids(L.Callback):
    """Reconstructions of a fixed validation batch (inputs above outputs) and samples from a fixed z.

    Drawn every `every_n_epochs` validation epochs and once more when fitting ends.
    """

    def __init__(self, out_dir: str, n_images: int = 8, n_samples: int = 64, every_n_epochs: int = 1, seed: int = 0):
        self.out_dir = Path(out_dir)
        self.n_images, self.n_samples, self.every_n_epochs, self.seed = n_images, n_samples, every_n_epochs, seed
        self.x: Tensor | None = None

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if batch_idx == 0 and self.x is None:  # the validation loader is not shuffled: a fixed batch
            self.x = batch[0][: self.n_images].detach()

    def on_validation_epoch_end(self, trainer, pl_module):
        epoch = trainer.current_epoch + 1
        if not trainer.sanity_checking and self.every_n_epochs and epoch % self.every_n_epochs == 0:
            self.draw(trainer, pl_module, suffix=f"_epoch{epoch:03d}")

    def on_fit_end(self, trainer, pl_module):
        self.draw(trainer, pl_module, suffix="")

    @torch.no_grad()
    def draw(self, trainer: L.Trainer, pl_module, suffix: str) -> None:
        if self.x is None or not trainer.is_global_zero:
            return
        was_training = pl_module.training
        pl_module.eval()
        x = self.x.to(pl_module.device)
        params, _, _ = pl_module(x)
        generator = torch.Generator().manual_seed(self.seed)
        z = torch.randn(self.n_samples, pl_module.latent_dim, generator=generator).to(pl_module.device)
        grids = {
            "reconstructions": make_grid(torch.cat([x, pl_module.mean_image(params)]), nrow=len(x)),
            "samples": make_grid(pl_module.decode(z), nrow=int(self.n_samples**0.5)),
        }
        pl_module.train(was_training)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name, grid in grids.items():
            save_image(grid, self.out_dir / f"{name}{suffix}.png")
            send_image(trainer, f"images/{name}", grid.cpu())


class EpochTimer(L.Callback):
    """Logs `train/epoch_time` (seconds) and `train/samples_per_s` of each epoch's training part, validation excluded."""

    def on_train_epoch_start(self, trainer, pl_module):
        self.samples, self.start = 0, time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.samples += len(batch[0])
        if batch_idx + 1 == trainer.num_training_batches and pl_module.device.type == "cuda":
            torch.cuda.synchronize()  # count the queued GPU work in this epoch
        self.end = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        seconds = self.end - self.start  # rank zero's clock; every rank sees as many samples
        pl_module.log("train/epoch_time", seconds, on_epoch=True, rank_zero_only=True)
        pl_module.log("train/samples_per_s", self.samples * trainer.world_size / seconds, on_epoch=True, rank_zero_only=True)


def send_image(trainer: L.Trainer, key: str, grid: Tensor) -> None:
    """Hand an image (C, H, W) in [0, 1] to each logger that shows images."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[grid], step=trainer.global_step)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, grid, trainer.global_step)

"""Pictures of the model during training: PNGs in the run folder, sent to every attached logger."""

import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger, WandbLogger
from torch import Tensor

from vae.pictures import draw_all, fixed_test_images, save_pictures


class ImageGrids(L.Callback):
    """The pictures of `vae.pictures` (reconstructions, prior samples, traversals, interpolations; with a
    2-D latent space the manifold and a scatter of codes), from fixed test images and a fixed z.

    Drawn every `every_n_epochs` validation epochs (0: never) and once more when fitting ends,
    as `<out_dir>/<name>[_epochNNN].png` titled with the epoch and step, and sent to every logger
    that shows images (W&B with a caption).
    """

    def __init__(
        self,
        out_dir: str,
        n_images: int = 8,
        n_samples: int = 64,
        n_codes: int = 1000,
        every_n_epochs: int = 1,
        seed: int = 0,
    ):
        self.out_dir = Path(out_dir)
        self.n_images, self.n_samples, self.n_codes = n_images, n_samples, n_codes
        self.every_n_epochs, self.seed = every_n_epochs, seed

    def on_validation_epoch_end(self, trainer, pl_module):
        epoch = trainer.current_epoch + 1
        if not trainer.sanity_checking and self.every_n_epochs and epoch % self.every_n_epochs == 0:
            self.draw(trainer, pl_module, suffix=f"_epoch{epoch:03d}", when=f"epoch {epoch}, step {trainer.global_step}")

    def on_fit_end(self, trainer, pl_module):
        when = f"end of training: epoch {trainer.current_epoch}, step {trainer.global_step}"
        self.draw(trainer, pl_module, suffix="", when=when)

    @torch.no_grad()
    def draw(self, trainer: L.Trainer, pl_module, suffix: str, when: str) -> None:
        if not trainer.is_global_zero:
            return
        x, labels = fixed_test_images(trainer.datamodule, max(self.n_images, self.n_codes), pl_module.device)
        generator = torch.Generator().manual_seed(self.seed)
        z = pl_module.sample_latents(self.n_samples, generator)
        was_training = pl_module.training
        pl_module.eval()
        pictures = draw_all(pl_module, x, labels, z, self.n_images, when=when)
        pl_module.train(was_training)
        save_pictures(pictures, self.out_dir, suffix)
        for name, image in pictures.items():
            send_image(trainer, f"images/{name}", image.cpu(), caption=f"{CAPTIONS.get(name, name)} ({when})")


class EpochTimer(L.Callback):
    """Logs `train/epoch_time` (seconds) and `train/samples_per_s` of each epoch's training part, validation excluded."""

    def __init__(self):
        self.samples, self.start = 0, time.perf_counter()
        self.end = self.start

    def on_train_epoch_start(self, trainer, pl_module):
        self.samples, self.start = 0, time.perf_counter()
        self.end = self.start

    on_train_start = on_train_epoch_start  # a run resumed mid-epoch starts timing without an epoch start

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.samples += outputs.get("samples", len(batch[0])) if isinstance(outputs, dict) else len(batch[0])
        if batch_idx + 1 == trainer.num_training_batches and pl_module.device.type == "cuda":
            torch.cuda.synchronize()  # count the queued GPU work in this epoch
        self.end = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        if not self.samples:  # resumed at the epoch's end: its batches were timed by the stopped run, not this one
            return
        seconds = self.end - self.start  # rank zero's clock; every rank sees as many samples
        per_epoch = dict(on_epoch=True, rank_zero_only=True, batch_size=1)  # one figure an epoch, nothing to average
        pl_module.log("train/epoch_time", seconds, **per_epoch)
        pl_module.log("train/samples_per_s", self.samples * trainer.world_size / seconds, **per_epoch)


CAPTIONS = {
    "reconstructions": "test images (top) and their reconstructions from E[z|x]",
    "samples": "decoded draws of the prior p(z)",
    "traversals": "one test image, the most used latent dimensions swept over [-3, 3]",
    "interpolations": "straight lines between the codes of two test images",
    "manifold": "decoded grid of the 2-D prior's quantiles",
    "codes": "test codes E[z|x] coloured by label",
    "class_samples": "one row per class: the same prior draws decoded with each label",
    "hierarchy": "the top layer fixed along each row, the layers below drawn from p anew",
}


def send_image(trainer: L.Trainer, key: str, grid: Tensor, caption: str | None = None) -> None:
    """Hand an image (C, H, W) in [0, 1] to each logger that shows images; W&B shows the caption under it."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            captions = {"caption": [caption]} if caption else {}
            logger.log_image(key=key, images=[grid], step=trainer.global_step, **captions)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, grid, trainer.global_step)
        elif isinstance(logger, MLFlowLogger):  # an artifact per picture and step: images/<name>_step<N>.png
            pixels = (grid.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()  # (H, W, C)
            logger.experiment.log_image(logger.run_id, pixels, artifact_file=f"{key}_step{trainer.global_step:06d}.png")

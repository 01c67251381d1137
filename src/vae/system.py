"""The Lightning system: a model (any family, `vae.families.base.Family`), an objective, logging and the optimiser.

One shared step for train/val/test: draw from the model, score the draw with the objective,
log the terms. The maths lives in the parts; this file holds none of it. The system is built
from the composed config alone, so `System.load_from_checkpoint(path)` works like any LightningModule's.
(`VAE` is its former name, kept for scripts that import it.)
"""

import lightning as L
import torch
from omegaconf import OmegaConf
from torch import Tensor

from vae.assemble import build_model, build_objective
from vae.checkpoints import load_checkpoint
from vae.compat import carry_step_count, count_another_batch, epoch_ends, should_write_step_logs, steps_before_boundary
from vae.errors import ConfigError, TrainingDiverged, divergence_message
from vae.optim import optimizers

AUTO_STEPS_PER_CALL = 10  # Lightning's cost per call falls to a tenth; calls end at log_every_n_steps' default 10 anyway


def steps_per_call(config) -> int:
    """`steps_per_call` as a number: `auto` is AUTO_STEPS_PER_CALL, or 1 where the trainer needs Lightning's own step."""
    value = config.get("steps_per_call", 1)
    if value != "auto":
        return value
    return 1 if needs_lightnings_step(config.get("trainer") or {}) else AUTO_STEPS_PER_CALL


def needs_lightnings_step(trainer) -> str | None:
    """Why these trainer settings must work inside Lightning's own step, if they must."""
    if trainer.get("accumulate_grad_batches", 1) != 1:
        return f"it cannot accumulate trainer.accumulate_grad_batches={trainer.get('accumulate_grad_batches')}"
    if trainer.get("gradient_clip_val") and str(trainer.get("precision")).startswith("16"):
        return (f"it cannot clip gradients under trainer.precision={trainer.get('precision')} (its loss scaler unscales "
                "them only in Lightning's own step; trainer.precision=bf16-mixed needs no scaler)")  # fmt: skip
    return None


class System(L.LightningModule):
    """Minimises `objective(model.draw(x))`; logs each term as `train/`, `val/`, `test/` means in nats per example.

    `elbo` is always the beta = 1 ELBO, so runs with different objectives and beta schedules stay comparable.
    """

    def __init__(self, config: dict):
        super().__init__()
        self.save_hyperparameters()  # the composed config rides in every checkpoint
        cfg = OmegaConf.create(config)
        self.model = build_model(cfg)
        self.objective = build_objective(cfg, self.model)
        self.steps_per_call = steps_per_call(cfg)
        if self.steps_per_call > 1:  # Lightning hands a step that asks for `dataloader_iter` the batch iterator
            self.automatic_optimization = False
            self.training_step = self.training_steps

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, trust=(), **kwargs) -> "System":
        """Lightning's loader, always with `weights_only=True` and the stored config checked before it is built
        (vae.targets): a checkpoint is data, never code."""
        config = load_checkpoint(checkpoint_path, trust=trust)["hyper_parameters"]["config"]
        return super().load_from_checkpoint(
            checkpoint_path, map_location=map_location, weights_only=True, **{"config": config, **kwargs}
        )

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        carry_step_count(checkpoint, self.automatic_optimization)  # a resume may change steps_per_call

    @property
    def latent_dim(self) -> int:
        return self.model.latent_dim

    def encode(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """x (B, C, H, W) -> the code (B, D), float32: what pictures and metrics use. y: labels, for a conditional family."""
        return self.model.encode(x, y)

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """z (B, D) -> E[x|z] (B, C, H, W) in [0, 1]. y: labels, for a conditional family."""
        return self.model.decode(z, y)

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n draws (n, D) of the prior p(z), on the system's device."""
        return self.model.sample_latents(n, generator)

    def sample(self, n: int, y: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """n images (n, C, H, W) in [0, 1] decoded from prior draws; a conditional family cycles its classes without y."""
        return self.model.sample(n, y, generator)

    def setup(self, stage: str) -> None:
        self.trainer.datamodule.setup(stage)  # done already by Lightning: a no-op, said here for what follows
        self.objective.setup(self.trainer.datamodule.split_size("train"))  # beta-TCVAE's estimator needs N
        labels = self.trainer.datamodule.all_labels() if self.model.classes else None  # once, not a sync per step
        if labels is not None:
            if int(labels.max()) >= self.model.classes:
                raise ConfigError(
                    f"family.classes={self.model.classes} but the data has labels up to {int(labels.max())}: "
                    "give family.classes=null (counted from the data) or a larger number"
                )

    def terms(self, x: Tensor, y: Tensor, step: int) -> dict:
        """The step's maths: draw from the model and score the draw; (B,) tensors (or floats) by name, with `loss`.

        `model.compile=true` compiles this method alone (`compile_maths`), not Lightning's logging around it.
        """
        draw = self.model.draw(x, y, k=self.objective.k)
        terms = self.objective(draw, step)
        if draw.extra_loss:  # a family's own terms (VQ-VAE: codebook and commitment), logged beside the objective's
            terms = terms | draw.extra_loss | {"loss": terms["loss"] + sum(draw.extra_loss.values())}
        return terms | draw.logged  # a family's diagnostics (the KL of each layer, codebook perplexity)

    def compile_maths(self) -> None:
        """torch.compile the step's maths; the module itself stays plain for Lightning, checkpoints and devices."""
        self.terms = torch.compile(self.terms)

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        terms = self.terms(x, y, self.global_step)
        if stage == "test":  # a figure the family has no meaning for is left out, not printed wrong
            terms = {name: v for name, v in terms.items() if name not in self.model.not_applicable}
        loss = terms["loss"].mean()
        on_step = stage == "train"  # train per step; val and test as epoch means, reduced across ranks
        if on_step:
            self.check_finite(loss, terms, x)
            if not should_write_step_logs(self.trainer):
                return loss  # step metrics are written every log_every_n_steps: in between, skip building them
        for name, value in terms.items():
            self.log(
                f"{stage}/{name}",
                value.mean() if isinstance(value, Tensor) else value,
                on_step=on_step,
                on_epoch=not on_step,
                prog_bar=name == "elbo",
                sync_dist=not on_step,
                batch_size=len(x),
            )
        return loss

    def check_finite(self, loss: Tensor, terms: dict, x: Tensor) -> None:
        """Stop before a non-finite loss reaches the weights (one sync per step), naming the term that broke
        and its likely cause (the data, the KL weight, or the learning rate)."""
        if not torch.isfinite(loss):
            means = {name: v.mean() for name, v in terms.items() if isinstance(v, Tensor)}
            term = next((name for name, value in means.items() if name != "loss" and not torch.isfinite(value)), "loss")
            lr = self.optimizers().param_groups[0]["lr"]
            beta = float(terms.get("beta", 1.0))
            inputs_finite = bool(torch.isfinite(x).all())
            raise TrainingDiverged(divergence_message(self.global_step, term, means[term].item(), lr, beta, inputs_finite))

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def training_steps(self, dataloader_iter) -> dict:
        """`steps_per_call` optimiser steps in one call of Lightning's loop, whose own cost per call (about
        0.35 ms on a CPU, more on a GPU's host) a small model would otherwise pay per step.

        Each step is the one automatic optimisation takes (zero_grad, backward, clipping, step, the
        per-step schedule), and a call ends wherever Lightning acts between calls (logs, checkpoints,
        validation, the epoch's end, SIGTERM), so those see the same steps as with one step per call.
        """
        trainer, optimizer = self.trainer, self.optimizers()
        clip = self.hparams.config["trainer"].get("gradient_clip_val")
        algorithm = self.hparams.config["trainer"].get("gradient_clip_algorithm")
        losses, samples = [], 0
        for i in range(steps_before_boundary(trainer, self.steps_per_call)):
            if i:
                if dataloader_iter.done or (trainer.received_sigterm and trainer.world_size == 1):
                    break  # several processes finish the call alike: each took as many steps, for DDP's all-reduce
                count_another_batch(trainer)
            batch, _, _ = next(dataloader_iter)
            loss = self._step(trainer.strategy.batch_to_device(batch), "train")
            optimizer.zero_grad()
            self.manual_backward(loss)
            if clip:
                self.clip_gradients(optimizer, gradient_clip_val=clip, gradient_clip_algorithm=algorithm)
            optimizer.step()
            self.step_schedule("step")
            losses.append(loss.detach())
            samples += len(batch[0])
        if epoch_ends(trainer, dataloader_iter):
            self.step_schedule("epoch")
        return {"loss": torch.stack(losses).mean(), "steps": len(losses), "samples": samples}

    def step_schedule(self, interval: str) -> None:
        """Step the learning-rate schedule, if it is stepped every `interval`: what Lightning does in automatic mode."""
        schedule = self.hparams.config.get("scheduler")
        if schedule and schedule["interval"] == interval:
            self.lr_schedulers().step()

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def configure_optimizers(self):
        return optimizers(self.hparams.config, self.parameters(), lambda: self.trainer.estimated_stepping_batches)


VAE = System  # the former name: checkpoints store only the config, so either name loads them

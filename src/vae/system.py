"""The Lightning system: a model (any family, `vae.families.base.Family`), an objective, logging and the optimiser.

One shared step for train/val/test: draw from the model, score the draw with the objective,
log the terms. The maths lives in the parts; this file holds none of it. An objective that owns
trainable parts (a discriminator, `Objective.parts`) has them registered here, so checkpoints hold
their weights, and gets a second optimiser, stepped after the model's (`vae.steps_per_call.take_steps`). The system is built
from the composed config alone, so `System.load_from_checkpoint(path)` works like any LightningModule's.
(`VAE` is its former name, kept for scripts that import it.)
"""

import math

import lightning as L
import torch
from omegaconf import OmegaConf
from torch import Tensor

import vae.steps_per_call as steps_per_call
from vae.assemble import build_model, build_objective
from vae.checkpoints import load_checkpoint
from vae.compat import (
    HOOK_NAME,
    carry_step_count,
    log_without_needless_moves,
    should_write_step_logs,
    spare_cuda_probes,
)
from vae.errors import ConfigError, TrainingDiverged, divergence_message
from vae.optim import optimizers


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
        self.objective_parts = self.objective.parts()  # a module of the system's, so checkpoints hold its weights
        self.steps_per_call = steps_per_call.apply(self, cfg)  # > 1: its training step takes several (vae.steps_per_call)

    def __setattr__(self, name: str, value) -> None:
        if name == HOOK_NAME:  # Lightning sets it around every hook, ~25 times a step: skip nn.Module's checks
            self.__dict__[name] = value
        else:
            super().__setattr__(name, value)

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
        if self.objective_parts is not None and self.trainer.world_size > 1:
            raise ConfigError(
                f"objective={self.objective.name} trains its {type(self.objective_parts).__name__.lower()} in a step "
                "of its own, which is not synchronised across processes: train on one device (trainer.devices=1)"
            )
        spare_cuda_probes()  # without a GPU, Lightning's setting makes torch probe for one at every optimiser step
        log_without_needless_moves()  # each self.log would rebuild the metric's state on the device it is on
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
        return self.losses(batch, stage)[0]

    def losses(self, batch: tuple[Tensor, Tensor], stage: str) -> tuple[Tensor, Tensor | None]:
        """Score a batch and log its terms: (the model's loss, the objective's parts' loss or None), batch means."""
        x, y = batch
        terms = self.terms(x, y, self.global_step)
        if stage == "test":  # a figure the family has no meaning for is left out, not printed wrong
            terms = {name: v for name, v in terms.items() if name not in self.model.not_applicable}
        loss = terms["loss"].mean()
        parts_loss = terms["parts_loss"].mean() if self.objective_parts is not None else None
        on_step = stage == "train"  # train per step; val and test as epoch means, reduced across ranks
        if on_step:
            self.check_finite(loss, terms, x)
            if not should_write_step_logs(self.trainer):
                return loss, parts_loss  # step metrics are written every log_every_n_steps: skip building them
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
        return loss, parts_loss

    def check_finite(self, loss: Tensor, terms: dict, x: Tensor) -> None:
        """Stop before a non-finite loss reaches the weights (one sync per step), naming the term that broke
        and its likely cause (the data, the KL weight, or the learning rate)."""
        if not math.isfinite(loss.item()):  # one call; torch.isfinite and bool() are two, each with its dispatch
            means = {name: v.mean() for name, v in terms.items() if isinstance(v, Tensor)}
            term = next((name for name, value in means.items() if name != "loss" and not torch.isfinite(value)), "loss")
            lr = self.model_optimizer().param_groups[0]["lr"]
            beta = float(terms.get("beta", 1.0))
            inputs_finite = bool(torch.isfinite(x).all())
            raise TrainingDiverged(divergence_message(self.global_step, term, means[term].item(), lr, beta, inputs_finite))

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def configure_optimizers(self):
        """The model's optimiser (and schedule); where the objective owns parts, theirs after it, without a schedule."""
        config = self.hparams.config
        model = optimizers(config, self.model.parameters(), lambda: self.trainer.estimated_stepping_batches)
        if self.objective_parts is None:
            return model
        parts = self.objective.optimizer(self.objective_parts.parameters())
        return [model if isinstance(model, dict) else {"optimizer": model}, {"optimizer": parts}]

    def model_optimizer(self):
        """The model's optimiser, as Lightning wraps it (the first where the objective's parts have their own)."""
        optimizer = self.optimizers()
        return optimizer[0] if isinstance(optimizer, list) else optimizer


VAE = System  # the former name: checkpoints store only the config, so either name loads them

"""`steps_per_call`: several optimiser steps in one call of Lightning's training loop, the same steps as one per call.

Everything the knob does lives here; the rest of the project calls `apply` (the system), `check` (train's checks)
and `trainer_settings` (the Trainer's build). With `steps_per_call` > 1 the system asks Lightning for the batch
iterator (`training_step(dataloader_iter)`, manual optimisation) and `take_steps` takes each step as automatic
optimisation would: zero_grad, backward, clipping, the optimiser, a per-step schedule; a per-epoch one after the
epoch's last batch. A call ends wherever Lightning acts between calls (logs, checkpoints, validation, the epoch's
end, `max_steps`, SIGTERM), so those see the same steps as with one step per call; tests/test_steps_per_call.py
compares the two bit for bit. The Lightning internals it reads are in `vae.compat`, pinned by that test file.

An objective with trainable parts of its own (`Objective.parts`, a discriminator) always takes this path, with one
step per call or more: after each model step its parts take a step with their own optimiser on the `parts_loss`
of the same batch. That optimiser is stepped unwrapped, so Lightning's `global_step` still counts model steps.
"""

import types
import warnings

import torch
from omegaconf import OmegaConf

from vae.compat import count_another_batch, epoch_ends, steps_before_boundary
from vae.errors import ConfigError

AUTO = 10  # what `auto` means: Lightning's cost per call falls to a tenth; calls end at log_every_n_steps' default 10
LIGHTNING_WARNINGS = (  # what Lightning says of the path taken on purpose here: nothing a user can act on
    r".*dataloader_iter.*(experimental|step flavor).*",  # "here be dragons": the batch iterator is asked for on purpose
    r"Using ModelCheckpoint with manual optimization.*",  # checkpoints are saved after the step, as with one per call
)


def resolve(config) -> int:
    """`steps_per_call` as a number: `auto` is AUTO, or 1 where the trainer needs Lightning's own step."""
    value = config.get("steps_per_call", 1)
    if value != "auto":
        return value
    return 1 if needs_lightnings_step(config.get("trainer") or {}) else AUTO


def needs_lightnings_step(trainer) -> str | None:
    """Why these trainer settings must work inside Lightning's own step, if they must."""
    if trainer.get("accumulate_grad_batches", 1) != 1:
        return f"it cannot accumulate trainer.accumulate_grad_batches={trainer.get('accumulate_grad_batches')}"
    if trainer.get("gradient_clip_val") and str(trainer.get("precision")).startswith("16"):
        return (f"it cannot clip gradients under trainer.precision={trainer.get('precision')} (its loss scaler unscales "
                "them only in Lightning's own step; trainer.precision=bf16-mixed needs no scaler)")  # fmt: skip
    return None


def check(cfg) -> None:
    """Refuse a `steps_per_call` that is not auto or >= 1, and a number > 1 with the two trainer settings that
    work only inside Lightning's step (`auto` gives way to them)."""
    steps = cfg.get("steps_per_call", 1)
    if steps != "auto" and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ConfigError(f"steps_per_call={steps} is invalid: it must be auto or an integer >= 1")
    reason = needs_lightnings_step(cfg.trainer)
    if steps != "auto" and steps > 1 and reason:
        raise ConfigError(f"steps_per_call={steps} takes its optimiser steps itself: {reason}; give steps_per_call=1")


def trainer_settings(cfg, automatic: bool = True):
    """`cfg.trainer`, for the Trainer: where the system takes its own steps (`automatic` False: several a call, or
    an objective with parts) it clips in them (Lightning refuses to clip in manual optimisation), so the clipping
    settings are left out."""
    if resolve(cfg) == 1 and automatic:
        return cfg.trainer
    resolved = OmegaConf.to_container(cfg.trainer, resolve=True)
    assert isinstance(resolved, dict)
    return {key: value for key, value in resolved.items() if key not in ("gradient_clip_val", "gradient_clip_algorithm")}


def apply(system, cfg) -> int:
    """Set the system up for this config's steps per call, and return it. With one, Lightning's own loop runs
    unchanged; with more, the system takes its steps in `take_steps` and Lightning's warnings about that path,
    which say nothing a user can act on, are not shown. An objective with parts always takes that path."""
    steps = resolve(cfg)
    if system.objective_parts is not None:
        refuse_for_parts(system.objective.name, cfg.trainer)
    if steps > 1 or system.objective_parts is not None:  # a step that asks for `dataloader_iter` gets the iterator
        for message in LIGHTNING_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        system.automatic_optimization = False
        system.training_step = types.MethodType(take_steps, system)
    return steps


def refuse_for_parts(objective: str, trainer) -> None:
    """An objective whose parts take steps of their own refuses, in one line, the trainer settings that work only
    inside Lightning's step, and a loss scaler (16-bit precision), which would not unscale the parts' gradients."""
    reason = needs_lightnings_step(trainer)
    if reason is None and str(trainer.get("precision")).startswith("16"):
        reason = (f"its loss scaler under trainer.precision={trainer.get('precision')} would not unscale them "
                  "(trainer.precision=bf16-mixed needs no scaler)")  # fmt: skip
    if reason:
        raise ConfigError(f"objective={objective} trains its own parts in steps it takes itself: {reason}")


def take_steps(system, dataloader_iter) -> dict:
    """`system.steps_per_call` optimiser steps in one call of Lightning's loop, whose own cost per call a small
    model would otherwise pay per step.

    Each step is the one automatic optimisation takes (zero_grad, backward, clipping, step, the per-step
    schedule), and a call ends wherever Lightning acts between calls (logs, checkpoints, validation, the epoch's
    end, SIGTERM), so those see the same steps as with one step per call.
    """
    trainer, optimizer = system.trainer, system.model_optimizer()
    clip = system.hparams.config["trainer"].get("gradient_clip_val")
    algorithm = system.hparams.config["trainer"].get("gradient_clip_algorithm")
    losses, samples = [], 0
    for i in range(steps_before_boundary(trainer, system.steps_per_call)):
        if i:
            if dataloader_iter.done or (trainer.received_sigterm and trainer.world_size == 1):
                break  # several processes finish the call alike: each took as many steps, for DDP's all-reduce
            count_another_batch(trainer)
        batch, _, _ = next(dataloader_iter)
        loss, parts_loss = system.losses(trainer.strategy.batch_to_device(batch), "train")
        optimizer.zero_grad()
        system.manual_backward(loss)
        if clip:
            system.clip_gradients(optimizer, gradient_clip_val=clip, gradient_clip_algorithm=algorithm)
        optimizer.step()
        step_schedule(system, "step")
        if parts_loss is not None:
            step_parts(system, parts_loss)
        losses.append(loss.detach())
        samples += len(batch[0])
    if epoch_ends(trainer, dataloader_iter):
        step_schedule(system, "epoch")
    return {"loss": torch.stack(losses).mean(), "steps": len(losses), "samples": samples}


def step_parts(system, parts_loss: torch.Tensor) -> None:
    """One step of the objective's parts on their loss, after the model's step (Kim & Mnih 2018, Algorithm 2).

    The model's loss reached the parts too (FactorVAE's TC term runs through the discriminator): their
    gradients are cleared first, so the step follows `parts_loss` alone, whose graph reaches only the parts.
    The optimiser is Lightning's unwrapped one: stepping the wrapper would count a second `global_step`.
    """
    optimizer = system.optimizers()[1].optimizer
    optimizer.zero_grad()
    system.manual_backward(parts_loss)
    optimizer.step()


def step_schedule(system, interval: str) -> None:
    """Step the learning-rate schedule, if it is stepped every `interval`: what Lightning does in automatic mode."""
    schedule = system.hparams.config.get("scheduler")
    if schedule and schedule["interval"] == interval:
        system.lr_schedulers().step()

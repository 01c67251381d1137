"""The optimiser and its learning-rate schedule, from the `optimizer` and `scheduler` config groups.

`optimizer` is a Hydra partial (`_partial_: true`) that the parameters complete; `scheduler`,
when given, is a partial that the optimiser completes, stepped every `interval` (`step` or
`epoch`), in the form Lightning's `configure_optimizers` returns.
"""

import itertools
import math
from collections.abc import Callable, Iterable

import torch
from hydra.utils import instantiate
from torch.optim.lr_scheduler import LambdaLR, MultiStepLR

from vae.schedules import burda2016_stages


def optimizers(config: dict, parameters: Iterable[torch.nn.Parameter], total_steps: Callable[[], float] | None = None):
    """What `configure_optimizers` returns: the optimiser, with its schedule if the config has one.

    `total_steps()` (Lightning's estimated stepping batches) completes a schedule whose own is null.
    """
    optimizer = instantiate(config["optimizer"])(parameters)
    schedule = config.get("scheduler")
    if not schedule:
        return optimizer
    kwargs = {}
    if schedule["scheduler"].get("total_steps", 0) is None and total_steps is not None:
        kwargs["total_steps"] = int(total_steps())  # the schedule spans the whole run
    scheduler = instantiate(schedule["scheduler"])(optimizer, **kwargs)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": schedule["interval"]}}


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int, min_factor: float = 0.0) -> float:
    """The learning rate's factor at `step`: linear from 1/(warmup_steps + 1) up to 1 over `warmup_steps`, then
    half a cosine down to `min_factor` at `total_steps` (Goyal et al. 2017; Loshchilov & Hutter 2017), then flat."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))


def warmup_cosine(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, min_factor: float = 0.0
) -> LambdaLR:
    """`warmup_cosine_factor` as a scheduler stepped every training step."""
    return LambdaLR(optimizer, lambda step: warmup_cosine_factor(step, warmup_steps, total_steps, min_factor))


def burda2016(optimizer: torch.optim.Optimizer, budget: float = 1.0) -> MultiStepLR:
    """Burda et al. 2016's stepwise rate: the rate falls by 10^(-1/7) at the end of each stage, stepped per epoch."""
    ends = list(itertools.accumulate(burda2016_stages(budget)))
    return MultiStepLR(optimizer, milestones=ends[:-1], gamma=10 ** (-1 / 7))

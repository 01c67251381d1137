"""`Objective`: what every training objective offers the system and the families (the `objective=` group).

An objective may own trainable parts (FactorVAE's and the AAE's discriminators): `parts()` returns them as one
module, which the system registers (so checkpoints hold its weights), and `optimizer(parameters)` their own
optimiser, which the system adds beside the model's. Each training step then takes two updates: the model's,
minimising `loss`, and then the parts', minimising the `parts_loss` term the same call returned.
"""

import torch
from torch import nn

from vae.draw import Draw
from vae.errors import ConfigError
from vae.families.base import Family


class Objective:
    """A function of a `Draw` and the global step: `__call__` returns (B,) terms by name, `loss` minimised.

    name: its option in conf/objective/; spelled: how messages name it (with an option that changes what it needs);
    k: posterior draws per example it wants. What it needs of the family, each a clause saying why (empty: nothing),
    which families that cannot give it refuse (`Family.check_objective`):
    needs_gaussian_posterior: one diagonal Gaussian q(z|x), whose (mu, logvar) it reads from `Draw.gaussian`;
    needs_standard_normal_prior: p(z) = N(0, I), fixed (an objective that pulls the codes towards prior draws in
    place of a KL term would never train a learned prior);
    needs_log_q: the density log q(z|x); False for those that train a deterministic encoder (ae, rae), which take
    nothing else.
    """

    name = ""
    k = 1
    needs_gaussian_posterior = ""
    needs_standard_normal_prior = ""
    needs_log_q = True

    @property
    def spelled(self) -> str:
        return f"objective={self.name}"

    def attach(self, family: Family) -> None:
        """Told the family it trains, once that family has accepted it: an objective that owns parts sizes them
        by `family.latent_dim`; one that compares q(z) with prior draws keeps `family.sample_latents`; a term on the
        model's own weights reads them (RAE's L2 regulariser, `Family.decoder_parameters`)."""

    def parts(self) -> nn.Module | None:
        """The trainable parts this objective owns, trained by `optimizer` on the `parts_loss` term; None: none."""
        return None

    def optimizer(self, parameters) -> torch.optim.Optimizer:
        """The optimiser of `parts()`'s parameters (only called where `parts()` is not None)."""
        raise NotImplementedError(f"objective={self.name} owns no parts to optimise")

    def setup(self, train_size: int) -> None:
        """Told the training split's size before fitting; only estimators of q(z) need it."""

    def __call__(self, draw: Draw, step: int) -> dict:
        """(B,) terms by name (or floats): `loss`, minimised by the model's optimiser; where the objective owns
        parts, also `parts_loss`, minimised by theirs, whose graph reaches only the parts (detached codes)."""
        raise NotImplementedError


def refuse_schedule(schedule, objective: str, why: str) -> None:
    """An objective without a KL term to weigh refuses a KL schedule other than the constant 1, in one line."""
    if schedule is not None and schedule.fixed() != 1.0:
        raise ConfigError(
            f"{schedule.spelled} does not apply to objective={objective}: {why}; leave beta= at its default (constant 1)"
        )


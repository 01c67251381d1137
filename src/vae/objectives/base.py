"""`Objective`: what every training objective offers the system and the families (the `objective=` group)."""

from vae.draw import Draw
from vae.errors import ConfigError


class Objective:
    """A function of a `Draw` and the global step: `__call__` returns (B,) terms by name, `loss` minimised.

    name: its option in conf/objective/; spelled: how messages name it (with an option that changes what it needs);
    k: posterior draws per example it wants. What it needs of the family, each a clause saying why (empty: nothing),
    which families that cannot give it refuse (`Family.check_objective`):
    needs_gaussian_posterior: one diagonal Gaussian q(z|x), whose (mu, logvar) it reads from `Draw.gaussian`;
    needs_standard_normal_prior: p(z) = N(0, I), fixed.
    """

    name = ""
    k = 1
    needs_gaussian_posterior = ""
    needs_standard_normal_prior = ""

    @property
    def spelled(self) -> str:
        return f"objective={self.name}"

    def setup(self, train_size: int) -> None:
        """Told the training split's size before fitting; only estimators of q(z) need it."""

    def bind(self, sample_latents) -> None:
        """Told, once the family has accepted it, the family's `sample_latents(n)`; only objectives that
        compare q(z) with prior draws (WAE, InfoVAE) keep it."""

    def __call__(self, draw: Draw, step: int) -> dict:
        raise NotImplementedError


def refuse_schedule(schedule, objective: str, why: str) -> None:
    """An objective without a KL term to weigh refuses a KL schedule other than the constant 1, in one line."""
    if schedule is not None and schedule.fixed() != 1.0:
        raise ConfigError(
            f"{schedule.spelled} does not apply to objective={objective}: {why}; leave beta= at its default (constant 1)"
        )

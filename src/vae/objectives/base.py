"""`Objective`: what every training objective offers the system and the families (the `objective=` group)."""

from vae.draw import Draw
from vae.errors import ConfigError


class Objective:
    """A function of a `Draw` and the global step: `__call__` returns (B,) terms by name, `loss` minimised.

    name: its option in conf/objective/; k: posterior draws per example it wants;
    needs_factorised_gaussian: whether it needs one diagonal Gaussian q(z|x) against N(0, I)
    (families refuse it otherwise, `Family.check_objective`); needs_log_q: whether it needs the density
    log q(z|x), False for those that train a deterministic encoder (ae, rae), which take nothing else.
    """

    name = ""
    k = 1
    needs_factorised_gaussian = False
    needs_log_q = True

    def setup(self, train_size: int) -> None:
        """Told the training split's size before fitting; only estimators of q(z) need it."""

    def attach(self, model) -> None:
        """Told the model (a `vae.families.base.Family`) it trains, once it is built; only a term on the model's
        own weights needs it (RAE's L2 regulariser, `Family.decoder_parameters`)."""

    def __call__(self, draw: Draw, step: int) -> dict:
        raise NotImplementedError


def refuse_schedule(schedule, objective: str, why: str) -> None:
    """An objective without a KL term to weigh refuses a KL schedule other than the constant 1, in one line."""
    if schedule is not None and schedule.fixed() != 1.0:
        raise ConfigError(
            f"{schedule.spelled} does not apply to objective={objective}: {why}; leave beta= at its default (constant 1)"
        )

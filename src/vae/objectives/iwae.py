"""The k-sample importance-weighted bound as a training objective (Burda et al. 2016, "Importance
Weighted Autoencoders", Eq. 8): L_k = E[log (1/k) sum_i p(x, z_i) / q(z_i|x)] >= ELBO, tighter as k grows.

The same function of a Draw estimates log p(x) in evaluation, with k in the thousands.
"""

from torch import Tensor

from vae.distributions import log_mean_exp
from vae.draw import Draw
from vae.errors import check_int
from vae.objectives.base import Objective, refuse_schedule
from vae.objectives.elbo import elbo_terms
from vae.schedules import Schedule


def iwae_bound(draw: Draw) -> Tensor:
    """log (1/K) sum_k w_k per example, (B,)."""
    return log_mean_exp(draw.log_w, dim=0)


class IWAE(Objective):
    name = "iwae"

    def __init__(self, k: int = 5, schedule: Schedule | None = None):
        self.k = check_int("objective.k", k, 1)
        refuse_schedule(schedule, "iwae", "its bound log mean_k p(x, z_k) / q(z_k|x) has no KL term to weigh; "
                        "for an annealed bound use objective=elbo objective.k=5")  # fmt: skip

    def __call__(self, draw: Draw, step: int) -> dict:
        terms = elbo_terms(draw)
        terms["iwae"] = iwae_bound(draw)
        terms["loss"] = -terms["iwae"]
        return terms

"""The k-sample importance-weighted bound as a training objective (Burda et al. 2016, "Importance
Weighted Autoencoders", Eq. 8): L_k = E[log (1/k) sum_i p(x, z_i) / q(z_i|x)] >= ELBO, tighter as k grows.

The same function of a Draw estimates log p(x) in evaluation, with k in the thousands. `gradient` picks the
estimator of its gradient (vae.objectives.gradients): reparam (Burda et al.'s), stl (Roeder et al. 2017; biased
for k > 1, as Tucker et al. 2019 show) or dreg (Tucker et al. 2019, unbiased, lower variance for the encoder).
The bound's value is the same for each.
"""

import torch
from torch import Tensor

from vae.distributions import log_mean_exp
from vae.draw import Draw
from vae.errors import check_int
from vae.objectives.base import Objective, refuse_schedule
from vae.objectives.elbo import elbo_terms
from vae.objectives.gradients import ESTIMATORS, check_gradient, log_q_stopped, routed
from vae.schedules import Schedule


def iwae_bound(draw: Draw) -> Tensor:
    """log (1/K) sum_k w_k per example, (B,)."""
    return log_mean_exp(draw.log_w, dim=0)


class IWAE(Objective):
    name = "iwae"

    def __init__(self, k: int = 5, schedule: Schedule | None = None, gradient: str = "reparam"):
        self.k = check_int("objective.k", k, 1)
        refuse_schedule(schedule, "iwae", "its bound log mean_k p(x, z_k) / q(z_k|x) has no KL term to weigh; "
                        "for an annealed bound use objective=elbo objective.k=5")  # fmt: skip
        self.gradient = check_gradient(gradient, "iwae", ESTIMATORS)
        if gradient != "reparam":
            self.needs_gaussian_posterior = "it evaluates q(z|x) with its parameters stopped"

    @property
    def spelled(self) -> str:
        return "objective=iwae" + (f" objective.gradient={self.gradient}" if self.gradient != "reparam" else "")

    def __call__(self, draw: Draw, step: int) -> dict:
        terms = elbo_terms(draw)
        terms["iwae"] = iwae_bound(draw)
        if self.gradient == "reparam":
            terms["loss"] = -terms["iwae"]
        elif self.gradient == "stl":  # the same value; phi's gradient is the path derivative alone
            terms["loss"] = -log_mean_exp(draw.log_px_z + draw.log_pz - log_q_stopped(draw), dim=0)
        else:  # dreg: theta's gradient sum_k w~_k grad log w_k, phi's through z alone with weights w~_k^2
            weights = torch.softmax(draw.log_w, dim=0).detach()  # (K, B) normalised importance weights
            terms["loss"] = -(terms["iwae"].detach() + routed(draw, weights, weights.pow(2), log_q_stopped(draw)))
        return terms

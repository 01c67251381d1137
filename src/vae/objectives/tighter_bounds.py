"""Bounds between the ELBO and IWAE (Rainforth et al. 2018, "Tighter Variational Bounds are Not Necessarily
Better", Sec. 4): a tighter bound helps the generative network's gradient but starves the inference network's
signal, so these trade the two.

- MIWAE(M, K): the mean of M IWAE bounds of K draws each, (1/M) sum_m log (1/K) sum_k w_mk (M = 1: IWAE; K = 1: ELBO).
- CIWAE(beta): beta * ELBO + (1 - beta) * IWAE over the same K draws.
- PIWAE(M, K): theta (decoder, prior) follows the IWAE bound of all M * K draws and phi (encoder) MIWAE(M, K),
  as one loss whose gradient is routed to each (vae.objectives.gradients.routed); its value is the IWAE bound's.

Each asks the family for M * K draws per example (`k`); `objective.k` in the configs is the K of one group.
"""

import torch
from torch import Tensor

from vae.distributions import log_mean_exp
from vae.draw import Draw
from vae.errors import ConfigError, check_int, check_number
from vae.objectives.base import Objective, refuse_schedule
from vae.objectives.elbo import elbo_terms
from vae.objectives.gradients import routed
from vae.schedules import Schedule

NO_KL = "its bound has no KL term to weigh; for an annealed bound use objective=elbo"


def miwae_bound(log_w: Tensor, m: int) -> Tensor:
    """(1/M) sum_m log (1/K) sum_k w_mk: log_w (M * K, B), grouped in M consecutive blocks of K -> (B,)"""
    return log_mean_exp(log_w.view(m, -1, log_w.shape[-1]), dim=1).mean(dim=0)


class MIWAE(Objective):
    name = "miwae"

    def __init__(self, m: int = 8, k: int = 8, schedule: Schedule | None = None):
        self.m = check_int("objective.m", m, 1)
        self.group = check_int("objective.k", k, 1)
        self.k = self.m * self.group  # draws per example the family gives
        refuse_schedule(schedule, self.name, NO_KL)

    def __call__(self, draw: Draw, step: int) -> dict:
        terms = elbo_terms(draw)
        terms["miwae"] = miwae_bound(draw.log_w, self.m)
        terms["loss"] = -terms["miwae"]
        return terms


class PIWAE(MIWAE):
    name = "piwae"

    def __call__(self, draw: Draw, step: int) -> dict:
        terms = elbo_terms(draw)
        log_w = draw.log_w  # (M * K, B)
        terms["iwae"] = log_mean_exp(log_w, dim=0)
        terms["miwae"] = miwae_bound(log_w, self.m)
        theta_weights = torch.softmax(log_w, dim=0)  # d IWAE / d log w
        groups = log_w.view(self.m, self.group, -1)  # (M, K, B)
        phi_weights = (torch.softmax(groups, dim=1) / self.m).view_as(log_w)  # d MIWAE / d log w
        terms["loss"] = -(terms["iwae"].detach() + routed(draw, theta_weights, phi_weights, draw.log_qz_x))
        return terms


class CIWAE(Objective):
    name = "ciwae"

    def __init__(self, beta: float = 0.5, k: int = 64, schedule: Schedule | None = None):
        self.beta = check_number("objective.beta", beta, 0.0)
        if self.beta > 1.0:
            raise ConfigError(f"objective.beta={beta} is invalid: it must be from 0 (the IWAE bound) to 1 (the ELBO)")
        self.k = check_int("objective.k", k, 1)
        refuse_schedule(schedule, self.name, NO_KL + "; objective.beta mixes the ELBO and IWAE bounds")

    def __call__(self, draw: Draw, step: int) -> dict:
        terms = elbo_terms(draw)
        log_w = draw.log_w  # (K, B)
        terms["iwae"] = log_mean_exp(log_w, dim=0)
        terms["ciwae"] = self.beta * log_w.mean(dim=0) + (1.0 - self.beta) * terms["iwae"]
        terms["loss"] = -terms["ciwae"]
        return terms

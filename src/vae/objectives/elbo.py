"""The ELBO with a KL weight, -E_q[log p(x|z)] + beta * KL (Kingma & Welling 2014; beta: Higgins et al. 2017).

The weight comes from the `beta=` schedule (constant, linear, cyclical); the capacity objective of
Burgess et al. 2018 is `objective=capacity` (vae.objectives.capacity). `free_bits` sets a KL floor per
layer (Kingma et al. 2016). With k > 1 draws it averages k one-sample ELBOs: the "VAE" rows of Burda
et al. 2016's Table 1. `gradient=stl` (Roeder et al. 2017) takes the KL term as the Monte Carlo log q - log p
with q's parameters stopped: the same expectation, and an encoder gradient that vanishes at the true posterior.
"""

from torch import Tensor

from vae.draw import Draw
from vae.errors import ConfigError, check_int, check_number
from vae.objectives.base import Objective
from vae.objectives.free_bits import free_bits_kl
from vae.objectives.gradients import check_gradient, log_q_stopped
from vae.schedules import Schedule


def kl_penalty(kl: Tensor, beta: float, capacity: float | None = None) -> Tensor:
    """The KL term of the loss: beta * KL, or beta * |KL - C| with a capacity C (Burgess et al. 2018).

    kl: (B,) -> (B,)
    """
    if capacity is None:
        return beta * kl
    return beta * (kl - capacity).abs()


def elbo_terms(draw: Draw) -> dict[str, Tensor]:
    """rec = -E_q[log p(x|z)], kl and the beta = 1 elbo, each (B,)."""
    rec = -draw.log_px_z.mean(dim=0)
    kl = draw.kl_estimate
    return {"rec": rec, "kl": kl, "elbo": -(rec + kl)}


class ELBO(Objective):
    name = "elbo"

    def __init__(self, schedule: Schedule, k: int = 1, free_bits: float = 0.0, gradient: str = "reparam"):
        self.schedule = schedule
        self.k = check_int("objective.k", k, 1)
        self.free_bits = check_number("objective.free_bits", free_bits, 0.0)  # nats per layer; 0: off
        self.gradient = check_gradient(gradient, "elbo", ("reparam", "stl"))
        if gradient == "stl":
            self.needs_gaussian_posterior = "it evaluates q(z|x) with its parameters stopped"
            if self.free_bits:
                raise ConfigError(f"objective.gradient=stl does not combine with objective.free_bits={free_bits}: "
                                  "the floor is per layer, the estimator per draw; give one or the other")  # fmt: skip

    @property
    def spelled(self) -> str:
        return "objective=elbo" + (" objective.gradient=stl" if self.gradient == "stl" else "")

    def __call__(self, draw: Draw, step: int) -> dict:
        terms = elbo_terms(draw)
        beta = self.schedule.beta(step)
        kl = terms["kl"]
        if self.gradient == "stl":  # Roeder et al. 2017: log q with its parameters stopped, z live
            kl = (log_q_stopped(draw) - draw.log_pz).mean(dim=0)  # (B,)
        if self.free_bits:  # Kingma et al. 2016: a floor per layer (the whole code for one layer)
            kl = terms["kl_free_bits"] = free_bits_kl(draw.kl_layers or [kl], self.free_bits)
        terms["loss"] = terms["rec"] + kl_penalty(kl, beta)
        terms["beta"] = beta
        return terms

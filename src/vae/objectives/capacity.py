"""The capacity objective (Burgess et al. 2018, "Understanding disentangling in beta-VAE", Eq. 8):
-E_q[log p(x|z)] + gamma |KL - C(t)|, the target C rising linearly from 0 to `max_capacity` nats
over `capacity_steps`, so the KL is let grow a nat at a time rather than pressed down.

gamma weighs the KL's distance to its target; a `beta=` schedule has nothing to weigh here and is
refused unless it is the constant 1.
"""

from vae.draw import Draw
from vae.errors import check_int, check_number
from vae.objectives.base import Objective, refuse_schedule
from vae.objectives.elbo import elbo_terms, kl_penalty
from vae.schedules import Schedule, linear_warmup


class Capacity(Objective):
    name = "capacity"

    def __init__(self, gamma: float = 1000.0, max_capacity: float = 25.0, capacity_steps: int = 10000,
                 schedule: Schedule | None = None):  # fmt: skip
        self.gamma = check_number("objective.gamma", gamma, 0.0)
        self.max_capacity = check_number("objective.max_capacity", max_capacity, 0.0)
        self.capacity_steps = check_int("objective.capacity_steps", capacity_steps, 0)
        refuse_schedule(schedule, "capacity", "its KL term is weighed by objective.gamma against the target capacity")

    def capacity(self, step: int) -> float:
        """The KL target C(t) in nats at this step."""
        return linear_warmup(step, self.capacity_steps, 0.0, self.max_capacity)

    def __call__(self, draw: Draw, step: int) -> dict:
        terms = elbo_terms(draw)
        capacity = self.capacity(step)
        terms["loss"] = terms["rec"] + kl_penalty(terms["kl"], self.gamma, capacity)
        terms["capacity"] = capacity
        return terms

"""The plain autoencoder: reconstruction only, -log p(x|z) at z = the deterministic encoder's code
(`posterior=deterministic`). No KL term, so a `beta=` schedule other than the constant 1 is refused.
"""

from vae.draw import Draw
from vae.objectives.base import Objective, refuse_schedule
from vae.objectives.elbo import elbo_terms
from vae.schedules import Schedule


class AE(Objective):
    name = "ae"
    needs_log_q = False  # trains a deterministic encoder

    def __init__(self, schedule: Schedule | None = None):
        refuse_schedule(schedule, "ae", "its loss is the reconstruction alone")

    def __call__(self, draw: Draw, step: int) -> dict:
        terms = elbo_terms(draw)  # elbo and kl with log q = 0: what selects best.ckpt, see vae.posteriors.deterministic
        terms["loss"] = terms["rec"]
        return terms

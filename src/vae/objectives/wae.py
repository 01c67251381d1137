"""The Wasserstein auto-encoder with an MMD penalty, WAE-MMD (Tolstikhin et al. 2018, "Wasserstein
Auto-Encoders", Algorithm 2): reconstruction cost + lambda * MMD(q(z), p(z)).

The reconstruction cost is the likelihood's -log p(x|z) (the paper's squared error is likelihood=gaussian's up to
a scale); the MMD compares the batch's codes, draws of the aggregate posterior q(z), with as many draws of the
prior from the family's `sample_latents` (vae.objectives.mmd). Nothing in the loss moves a learned prior (the prior
draws carry no gradient), so it needs the fixed prior=standard_normal. There is no KL term: a `beta=` schedule is
refused; `kl` and `elbo` are still reported, so runs stay comparable.
"""

from vae.draw import Draw
from vae.errors import check_number
from vae.objectives.base import Objective, refuse_schedule
from vae.objectives.elbo import elbo_terms
from vae.objectives.mmd import check_kernel, mmd_to_prior
from vae.schedules import Schedule


class WAE(Objective):
    name = "wae"
    needs_standard_normal_prior = (
        "its MMD penalty compares q(z) with prior draws that carry no gradient, so a learned prior would never move"
    )

    def __init__(self, lam: float = 10.0, kernel: str = "imq", scale: float = 1.0, schedule: Schedule | None = None):
        self.lam = check_number("objective.lam", lam, 0.0)
        self.kernel = check_kernel(kernel)
        self.scale = check_number("objective.scale", scale, 1e-6)  # sigma of C = 2 D sigma^2
        refuse_schedule(schedule, "wae", "its loss has no KL term to weigh; objective.lam weighs the MMD penalty")
        self.sample_latents = None

    def attach(self, family) -> None:
        self.sample_latents = family.sample_latents

    def __call__(self, draw: Draw, step: int) -> dict:
        assert self.sample_latents is not None, "build the objective with vae.assemble.build_objective"
        terms = elbo_terms(draw)
        penalty = mmd_to_prior(draw.z, self.sample_latents, self.kernel, self.scale)
        terms["mmd"] = penalty
        terms["loss"] = terms["rec"] + self.lam * penalty  # (B,): the batch's penalty on every example
        return terms

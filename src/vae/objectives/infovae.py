"""InfoVAE with the MMD divergence, the MMD-VAE (Zhao et al. 2019, "InfoVAE: Balancing Learning and Inference
in Variational Autoencoders", Eq. 6 with D = MMD):

  loss = -E_q[log p(x|z)] + (1 - alpha) KL(q(z|x) || p(z)) + (alpha + lambda - 1) MMD(q(z), p(z)).

alpha = 1 drops the KL (the mutual information is no longer penalised); lambda weighs how close the aggregate
posterior q(z) must come to the prior. The MMD compares the batch's codes with as many draws of the family's
prior (`sample_latents`; vae.objectives.mmd). The `beta=` schedule weighs the (1 - alpha) KL term, as it weighs
the ELBO's. Both weights must be >= 0 (alpha <= 1, alpha + lambda >= 1), so the loss never rewards a divergence.
Defaults: alpha = 0 (the ELBO's full KL) and lambda = 1000, a large MMD weight (pythae's are alpha = 0.5, 0.03).
"""

from vae.draw import Draw
from vae.errors import ConfigError, check_number
from vae.objectives.base import Objective
from vae.objectives.elbo import elbo_terms
from vae.objectives.mmd import check_kernel, mmd_to_prior
from vae.schedules import Constant, Schedule


class InfoVAE(Objective):
    name = "infovae"

    def __init__(self, alpha: float = 0.0, lam: float = 1000.0, kernel: str = "imq", scale: float = 1.0,
                 schedule: Schedule | None = None):  # fmt: skip
        self.alpha = check_number("objective.alpha", alpha, 0.0)
        self.lam = check_number("objective.lam", lam, 0.0)
        if self.alpha > 1.0 or self.alpha + self.lam < 1.0:
            raise ConfigError(
                f"objective.alpha={alpha} with objective.lam={lam} is invalid: the KL weight 1 - alpha and the MMD weight "
                "alpha + lam - 1 must both be >= 0 (alpha <= 1 and alpha + lam >= 1)"
            )
        self.kernel = check_kernel(kernel)
        self.scale = check_number("objective.scale", scale, 1e-6)
        self.schedule = schedule or Constant()
        self.sample_latents = None

    def attach(self, family) -> None:
        self.sample_latents = family.sample_latents

    def __call__(self, draw: Draw, step: int) -> dict:
        assert self.sample_latents is not None, "build the objective with vae.assemble.build_objective"
        terms = elbo_terms(draw)
        penalty = mmd_to_prior(draw.z, self.sample_latents, self.kernel, self.scale)
        beta = self.schedule.beta(step)
        kl_weight, mmd_weight = (1.0 - self.alpha) * beta, self.alpha + self.lam - 1.0
        terms["loss"] = terms["rec"] + kl_weight * terms["kl"] + mmd_weight * penalty  # (B,)
        return terms | {"mmd": penalty, "beta": beta}

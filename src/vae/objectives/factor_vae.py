"""FactorVAE (Kim & Mnih 2018, "Disentangling by Factorising", Eq. 2 and Algorithm 2).

The ELBO less gamma times the total correlation TC(z) = KL(q(z) || prod_d q(z_d)) of the aggregate posterior:
  loss = -E_q[log p(x|z)] + beta * KL(q(z|x) || p(z)) + gamma * TC.
TC has no closed form; a discriminator D trained to tell codes z ~ q(z) (label 1) from codes whose dimensions
were shuffled across the batch (`permute_dims`, draws of prod_d q(z_d); label 0) has the logit
log D/(1 - D) ~ log q(z) / prod_d q(z_d), whose mean over z ~ q(z) estimates TC (the density-ratio trick).
D is trained after each model step by its own Adam on the same batch's codes, detached (as common
implementations do; the paper draws a second batch for the shuffled codes). The `beta=` schedule weighs the KL.
"""

from vae.draw import Draw
from vae.errors import check_number
from vae.objectives.discriminator import WithDiscriminator, classifier_loss, permute_dims
from vae.objectives.elbo import elbo_terms
from vae.schedules import Constant, Schedule


class FactorVAE(WithDiscriminator):
    name = "factor_vae"

    def __init__(
        self, gamma: float = 10.0, discriminator_hidden: int = 256, discriminator_layers: int = 3,
        discriminator_lr: float = 1e-4, discriminator_betas=(0.5, 0.9), schedule: Schedule | None = None,
    ):  # fmt: skip
        super().__init__(discriminator_hidden, discriminator_layers, discriminator_lr, discriminator_betas)
        self.gamma = check_number("objective.gamma", gamma, 0.0)
        self.schedule = schedule or Constant()

    def __call__(self, draw: Draw, step: int) -> dict:
        terms = elbo_terms(draw)
        critic = self.critic()
        z = draw.z[0]  # (B, D): one draw of q(z|x) per example, so the batch's codes are draws of q(z)
        tc = critic(z)  # (B,) log D/(1 - D): the density ratio's log at each code
        beta = self.schedule.beta(step)
        terms["loss"] = terms["rec"] + beta * terms["kl"] + self.gamma * tc
        codes = z.detach()  # the discriminator's own loss reaches the discriminator alone
        terms["parts_loss"] = classifier_loss(critic(codes), critic(permute_dims(codes)))  # (B,)
        return terms | {"tc": tc, "beta": beta}

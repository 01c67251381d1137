"""The adversarial autoencoder (Makhzani et al. 2016, "Adversarial Autoencoders", Sec. 2):
  loss = -E_q[log p(x|z)] + lambda * -log D(z),
a discriminator D telling prior draws p(z) (label 1) from the batch's codes z ~ q(z) (label 0), and the
encoder trained to fool it (the non-saturating generator loss of Goodfellow et al. 2014), so that the
aggregate posterior q(z) matches the prior without a KL term (a `beta=` schedule is refused). D takes its own
step after each model step, with its own Adam. The prior is drawn through `Family.sample_latents`, which
carries no gradient, so it must be the fixed standard normal.
"""

import torch.nn.functional as F

from vae.draw import Draw
from vae.errors import check_number
from vae.families.base import Family
from vae.objectives.base import refuse_schedule
from vae.objectives.discriminator import WithDiscriminator, classifier_loss
from vae.objectives.elbo import elbo_terms
from vae.schedules import Schedule


class AAE(WithDiscriminator):
    name = "aae"
    needs_standard_normal_prior = (
        "it pulls the codes towards prior draws in place of a KL term, so a learned prior would never be trained"
    )

    def __init__(
        self, weight: float = 1.0, discriminator_hidden: int = 256, discriminator_layers: int = 2,
        discriminator_lr: float = 1e-4, discriminator_betas=(0.5, 0.9), schedule: Schedule | None = None,
    ):  # fmt: skip
        super().__init__(discriminator_hidden, discriminator_layers, discriminator_lr, discriminator_betas)
        self.weight = check_number("objective.weight", weight, 0.0)
        refuse_schedule(schedule, "aae", "its regulariser is the discriminator's, weighed by objective.weight")
        self.family: Family | None = None

    def attach(self, family: Family) -> None:
        super().attach(family)
        self.family = family

    def __call__(self, draw: Draw, step: int) -> dict:
        assert self.family is not None, "attach(family) gives the prior to draw from before the objective is called"
        terms = elbo_terms(draw)
        critic = self.critic()
        z = draw.z[0]  # (B, D)
        adversarial = F.softplus(
            -critic(z)
        )  # (B,) -log D(z): the encoder is rewarded where D takes its codes for the prior's
        terms["loss"] = terms["rec"] + self.weight * adversarial
        prior = self.family.sample_latents(len(z)).to(z.dtype)  # (B, D)
        terms["parts_loss"] = classifier_loss(critic(prior), critic(z.detach()))  # (B,)
        return terms | {"adversarial": adversarial}

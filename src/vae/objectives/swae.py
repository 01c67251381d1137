"""The sliced-Wasserstein autoencoder (Kolouri et al. 2019, "Sliced-Wasserstein Autoencoder: An Embarrassingly
Simple Generative Model", Eq. 13):
  loss = -E_q[log p(x|z)] + lambda * SW_2^2(q(z), p(z)),
the squared sliced 2-Wasserstein distance between the batch's codes and as many prior draws, estimated over L
random directions on the unit sphere: in one dimension optimal transport pairs sorted samples with sorted samples,
so each slice costs a sort. No discriminator, no KL term (a `beta=` schedule is refused); the prior is drawn
through `Family.sample_latents`, which carries no gradient, so it must be the fixed standard normal.
"""

import torch
from torch import Tensor

from vae.draw import Draw
from vae.errors import check_int, check_number
from vae.families.base import Family
from vae.objectives.base import Objective, refuse_schedule
from vae.objectives.elbo import elbo_terms
from vae.schedules import Schedule


def random_directions(count: int, dims: int, device: torch.device, generator: torch.Generator | None = None) -> Tensor:
    """`count` directions drawn uniformly on the unit sphere in `dims` dimensions (normalised Gaussians): (L, D)."""
    theta = torch.randn(count, dims, generator=generator)
    return (theta / theta.norm(dim=1, keepdim=True)).to(device)


def sliced_wasserstein(a: Tensor, b: Tensor, directions: Tensor, p: int = 2) -> Tensor:
    """SW_p^p between the empirical measures of a and b (N, D) each, averaged over directions (L, D): a scalar.

    In one dimension the p-Wasserstein distance between two sets of N equally weighted points pairs the
    i-th smallest with the i-th smallest: W_p^p = (1/N) sum_i |a_(i) - b_(i)|^p.
    """
    projected_a = (a @ directions.T).sort(dim=0).values  # (N, L)
    projected_b = (b @ directions.T).sort(dim=0).values  # (N, L)
    return (projected_a - projected_b).abs().pow(p).mean()


class SWAE(Objective):
    name = "swae"
    needs_standard_normal_prior = (
        "it pulls the codes towards prior draws in place of a KL term, so a learned prior would never be trained"
    )

    def __init__(self, weight: float = 10.0, projections: int = 50, schedule: Schedule | None = None):
        self.weight = check_number("objective.weight", weight, 0.0)  # the paper's lambda
        self.projections = check_int("objective.projections", projections, 1)  # the paper's L
        refuse_schedule(
            schedule, "swae", "its regulariser is the sliced Wasserstein distance weighed by objective.weight"
        )
        self.family: Family | None = None

    def attach(self, family: Family) -> None:
        self.family = family

    def __call__(self, draw: Draw, step: int) -> dict:
        assert self.family is not None, "attach(family) gives the prior to draw from before the objective is called"
        terms = elbo_terms(draw)
        z = draw.z[0]  # (B, D)
        prior = self.family.sample_latents(len(z)).to(z.dtype)  # (B, D)
        directions = random_directions(self.projections, z.shape[1], z.device)  # (L, D)
        sw = sliced_wasserstein(z, prior, directions)
        terms["loss"] = terms["rec"] + self.weight * sw
        return terms | {"sw": sw}

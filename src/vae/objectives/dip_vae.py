"""DIP-VAE (Kumar et al. 2018, "Variational Inference of Disentangled Latent Concepts from Unlabeled
Observations", Eq. 6-8): the ELBO plus a penalty that pulls a covariance of the codes to the identity,

  lambda_od sum_{i != j} C_ij^2 + lambda_d sum_i (C_ii - 1)^2,

with C = Cov_x[mu(x)] over the batch (DIP-VAE-I) or the aggregate posterior's covariance
C = Cov_x[mu(x)] + E_x[diag sigma^2(x)] (DIP-VAE-II). Covariances are the batch's moments, E[mu mu^T] - E[mu] E[mu]^T
(divided by B, as the paper writes them). The identity is the covariance of the prior N(0, I), so it needs
prior=standard_normal, and it reads (mu, logvar) of a diagonal Gaussian q(z|x). lambda_d defaults to the paper's
choice: 10 lambda_od for type i, lambda_od for type ii. The `beta=` schedule weighs the ELBO's KL.
"""

import torch
from torch import Tensor

from vae.draw import Draw
from vae.errors import ConfigError, check_number
from vae.objectives.base import Objective
from vae.objectives.elbo import elbo_terms
from vae.schedules import Constant, Schedule

TYPES = ("i", "ii")


def batch_covariance(mu: Tensor) -> Tensor:
    """E[mu mu^T] - E[mu] E[mu]^T over the batch. mu: (B, D) -> (D, D)"""
    centred = mu - mu.mean(dim=0)  # (B, D)
    return centred.T @ centred / len(mu)


def dip_covariance(mu: Tensor, logvar: Tensor, kind: str) -> Tensor:
    """Cov[mu] (type i) or Cov[mu] + E[diag exp(logvar)] (type ii). mu, logvar: (B, D) -> (D, D)"""
    cov = batch_covariance(mu)
    return cov if kind == "i" else cov + torch.diag(logvar.exp().mean(dim=0))


def dip_penalty(cov: Tensor, lambda_od: float, lambda_d: float) -> Tensor:
    """lambda_od * sum of squared off-diagonal entries + lambda_d * sum (diagonal - 1)^2. cov: (D, D) -> ()"""
    diagonal = torch.diagonal(cov)
    off_diagonal = cov.pow(2).sum() - diagonal.pow(2).sum()
    return lambda_od * off_diagonal + lambda_d * (diagonal - 1.0).pow(2).sum()


class DIPVAE(Objective):
    name = "dip_vae"
    needs_gaussian_posterior = "its penalty reads the Gaussian posterior's mean (and for type ii its variance)"
    needs_standard_normal_prior = "its penalty pulls the codes' covariance to N(0, I)'s, the identity"

    def __init__(self, type: str = "i", lambda_od: float = 10.0, lambda_d: float | None = None,
                 schedule: Schedule | None = None):  # fmt: skip
        if type not in TYPES:
            raise ConfigError(f"objective.type={type} is unknown: choose i (Cov[mu]) or ii (Cov[mu] + E[sigma^2])")
        self.kind = type
        self.lambda_od = check_number("objective.lambda_od", lambda_od, 0.0)
        default_d = 10.0 * self.lambda_od if type == "i" else self.lambda_od  # Kumar et al. 2018, Sec. 5
        self.lambda_d = default_d if lambda_d is None else check_number("objective.lambda_d", lambda_d, 0.0)
        self.schedule = schedule or Constant()

    def __call__(self, draw: Draw, step: int) -> dict:
        if draw.gaussian is None:
            raise ConfigError(
                "objective=dip_vae needs posterior=gaussian: its penalty reads q(z|x)'s mean and variance"
            )
        terms = elbo_terms(draw)
        penalty = dip_penalty(dip_covariance(*draw.gaussian, self.kind), self.lambda_od, self.lambda_d)
        beta = self.schedule.beta(step)
        terms["loss"] = terms["rec"] + beta * terms["kl"] + penalty  # (B,): the batch's penalty on every example
        return terms | {"dip": penalty, "beta": beta}

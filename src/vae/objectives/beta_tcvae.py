"""beta-TCVAE (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs", Eq. 2 and Sec. 4.1).

The ELBO's KL splits into index-code mutual information, total correlation and dimension-wise KL:
  E[log q(z|x) - log p(z)] = E[log q(z|x) - log q(z)] + E[log q(z) - sum_d log q(z_d)] + E[sum_d log q(z_d) - log p(z_d)]
and the loss weights them alpha, beta, gamma. The aggregate posterior q(z) = (1/N) sum_n q(z|x_n) and
its marginals are estimated on the minibatch by the paper's minibatch stratified sampling (Appendix
C.2): z_i is scored under every q(.|x_j) of the batch with weights 1/N for its own example and the
rest spread so the weights sum to one, N the training set's size. (The paper's other estimator,
minibatch-weighted sampling, is off by log M when posteriors do not overlap.) It needs a diagonal
Gaussian posterior and a prior that factorises over dimensions (the standard normal). The `beta=`
schedule weighs the whole decomposed KL, as a warm-up (beta=linear) would weigh the ELBO's.
"""

import torch
from torch import Tensor

from vae.distributions import LOG_2PI
from vae.draw import Draw
from vae.errors import ConfigError, check_int, check_number
from vae.objectives.base import Objective
from vae.objectives.elbo import elbo_terms
from vae.schedules import Constant, Schedule


def log_normal_per_dim(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z_d; mu_d, exp(logvar_d)) for each dimension, unsummed. Broadcastable (..., D) -> (..., D)"""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * (-logvar).exp())


def log_stratified_weights(batch: int, dataset_size: int) -> Tensor:
    """log of the (B, B) importance weights of minibatch stratified sampling; each row sums to one.

    Row i weighs the batch's examples as a stand-in for the N of the data set, given that z_i came
    from example i (Chen et al. 2018, Appendix C.2): 1/N for example i itself, (N - M) / (N M) for
    example i + 1, which stands for the N - M examples outside the batch, and 1/M for the other M - 1
    (M = B - 1). Their reference code places the stratum weight twice in one row; here each row sums to one.
    """
    if batch == 1:
        return torch.zeros(1, 1)
    n, m = dataset_size, batch - 1
    rows = torch.arange(batch)
    weights = torch.full((batch, batch), 1.0 / m)
    weights[rows, rows] = 1.0 / n
    weights[rows, (rows + 1) % batch] = (n - m) / (n * m)
    return weights.log()


def decompose_kl(z: Tensor, mu: Tensor, logvar: Tensor, dataset_size: int) -> dict[str, Tensor]:
    """Index-code MI, total correlation and dimension-wise KL (each (B,)) of one draw z per example.

    z, mu, logvar: (B, D), z_i ~ q(z|x_i); the prior is N(0, I). The three parts sum to log q(z|x) - log p(z).
    """
    log_q_pairs = log_normal_per_dim(z.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))  # (B, B, D): z_i under q(.|x_j)
    log_weights = log_stratified_weights(len(z), max(dataset_size, len(z))).to(z.device)  # (B, B)
    log_qz = (log_q_pairs.sum(dim=2) + log_weights).logsumexp(dim=1)  # (B,) log q(z_i)
    log_qz_marginals = (log_q_pairs + log_weights.unsqueeze(2)).logsumexp(dim=1).sum(dim=1)  # (B,) sum_d log q(z_id)
    log_qz_x = log_normal_per_dim(z, mu, logvar).sum(dim=1)  # (B,)
    log_pz = log_normal_per_dim(z, z.new_zeros(()), z.new_zeros(())).sum(dim=1)  # (B,)
    return {
        "mi": log_qz_x - log_qz,
        "tc": log_qz - log_qz_marginals,
        "dwkl": log_qz_marginals - log_pz,
    }


class BetaTCVAE(Objective):
    name = "beta_tcvae"
    needs_gaussian_posterior = "its minibatch estimate of q(z) uses the posterior's Gaussian density per dimension"
    needs_standard_normal_prior = "its dimension-wise KL needs a prior that factorises over dimensions"

    def __init__(
        self, beta: float = 6.0, alpha: float = 1.0, gamma: float = 1.0, dataset_size: int | None = None,
        schedule: Schedule | None = None,
    ):  # fmt: skip
        self.beta = check_number("objective.beta", beta, 0.0)
        self.alpha = check_number("objective.alpha", alpha, 0.0)
        self.gamma = check_number("objective.gamma", gamma, 0.0)
        self.dataset_size = None if dataset_size is None else check_int("objective.dataset_size", dataset_size, 1)
        self.schedule = schedule or Constant()

    def setup(self, train_size: int) -> None:
        if self.dataset_size is None:  # N of the stratified weights: the training split's size
            self.dataset_size = train_size

    def __call__(self, draw: Draw, step: int) -> dict:
        if draw.gaussian is None:
            raise ConfigError("objective=beta_tcvae needs posterior=gaussian: its estimator uses q(z|x)'s Gaussian density")
        terms = elbo_terms(draw)
        mu, logvar = draw.gaussian
        parts = decompose_kl(draw.z[0], mu, logvar, self.dataset_size or len(mu))
        weight = self.schedule.beta(step)  # the KL schedule, over all three parts
        kl = self.alpha * parts["mi"] + self.beta * parts["tc"] + self.gamma * parts["dwkl"]
        terms["loss"] = terms["rec"] + weight * kl
        return terms | parts | {"beta": weight}

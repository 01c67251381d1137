"""`sampler=gmm`: a full-covariance Gaussian mixture fitted by EM to the training codes, then decoded
(Ghosh et al. 2020, "From Variational to Deterministic Autoencoders", Sec. 4: ex-post density estimation).

The EM steps are pure functions in float64 (Bishop 2006, "Pattern Recognition and Machine Learning",
Sec. 9.2.2), seeded by k-means++ (Arthur & Vassilvitskii 2007) from a generator, so a fit is repeatable.
"""

import math
from typing import NamedTuple

import torch
from torch import Tensor

from vae.errors import ConfigError, check_int, check_number
from vae.samplers import FittedSampler


class Mixture(NamedTuple):
    """weights (K,), means (K, D), covariances (K, D, D)."""

    weights: Tensor
    means: Tensor
    covariances: Tensor


def component_log_probs(x: Tensor, mixture: Mixture) -> Tensor:
    """log w_k + log N(x_n; mu_k, S_k) for every point and component. x: (N, D) -> (N, K)"""
    chol = torch.linalg.cholesky(mixture.covariances)  # (K, D, D) lower: S_k = L_k L_k^T
    eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device).expand_as(chol)
    chol_inv = torch.linalg.solve_triangular(chol, eye, upper=False)  # (K, D, D)
    diff = x.unsqueeze(0) - mixture.means.unsqueeze(1)  # (K, N, D)
    solved = diff @ chol_inv.transpose(1, 2)  # (K, N, D): L_k^-1 (x_n - mu_k), so |.|^2 is the Mahalanobis distance
    log_det = 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # (K,)
    log_normal = -0.5 * (solved.pow(2).sum(-1) + log_det.unsqueeze(1) + x.shape[1] * math.log(2 * math.pi))  # (K, N)
    return (mixture.weights.log().unsqueeze(1) + log_normal).T


def gmm_log_prob(x: Tensor, mixture: Mixture) -> Tensor:
    """log p(x_n) under the mixture. x: (N, D) -> (N,)"""
    return component_log_probs(x, mixture).logsumexp(dim=1)


def kmeans_plus_plus(x: Tensor, k: int, generator: torch.Generator | None = None) -> Tensor:
    """k seeds among the points, each drawn with probability proportional to its squared distance from the
    nearest seed so far (Arthur & Vassilvitskii 2007). x: (N, D) -> (k, D)"""
    chosen = [int(torch.randint(len(x), (1,), generator=generator))]
    for _ in range(k - 1):
        nearest = torch.cdist(x, x[chosen]).min(dim=1).values.pow(2)  # (N,)
        if nearest.sum() <= 0:  # fewer distinct points than seeds: any point will do
            nearest = torch.ones_like(nearest)
        chosen.append(int(torch.multinomial(nearest / nearest.sum(), 1, generator=generator)))
    return x[chosen]


def m_step(x: Tensor, resp: Tensor, reg: float) -> Mixture:
    """The mixture that maximises the expected log-likelihood under responsibilities resp (N, K); `reg` is added
    to every covariance's diagonal, as scikit-learn's reg_covar, so none collapses onto a point."""
    counts = resp.sum(dim=0) + 10 * torch.finfo(x.dtype).eps  # (K,), never 0
    means = resp.T @ x / counts.unsqueeze(1)  # (K, D)
    diff = x.unsqueeze(0) - means.unsqueeze(1)  # (K, N, D)
    covariances = (resp.T.unsqueeze(-1) * diff).transpose(1, 2) @ diff / counts.view(-1, 1, 1)  # (K, D, D)
    covariances = covariances + reg * torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    return Mixture(counts / counts.sum(), means, covariances)


def fit_gmm(
    x: Tensor, components: int, iterations: int = 100, tol: float = 1e-6, reg: float = 1e-6,
    generator: torch.Generator | None = None,
) -> tuple[Mixture, list[float]]:  # fmt: skip
    """EM for a full-covariance Gaussian mixture of `components` on x (N, D), in float64.

    Returns the mixture and the mean log-likelihood per point before each M-step and after the last, which
    never falls (Bishop 2006, Sec. 9.4); stops when it rises by less than `tol` nats.
    """
    x = x.double()
    means = kmeans_plus_plus(x, components, generator)  # (K, D)
    resp = torch.nn.functional.one_hot(torch.cdist(x, means).argmin(dim=1), components).double()  # (N, K) hard start
    mixture = m_step(x, resp, reg)
    history: list[float] = []
    for _ in range(iterations):
        log_probs = component_log_probs(x, mixture)  # (N, K)
        history.append(float(log_probs.logsumexp(dim=1).mean()))
        if len(history) > 1 and history[-1] - history[-2] < tol:
            break
        mixture = m_step(x, (log_probs - log_probs.logsumexp(dim=1, keepdim=True)).exp(), reg)  # E, then M
    else:
        history.append(float(gmm_log_prob(x, mixture).mean()))
    return mixture, history


def sample_gmm(mixture: Mixture, n: int, generator: torch.Generator | None = None) -> Tensor:
    """n draws (n, D): a component by its weight, then mu_k + L_k eps with S_k = L_k L_k^T."""
    k = torch.multinomial(mixture.weights, n, replacement=True, generator=generator)  # (n,)
    eps = torch.randn(n, mixture.means.shape[1], generator=generator, dtype=mixture.means.dtype)  # (n, D)
    chol = torch.linalg.cholesky(mixture.covariances)  # (K, D, D)
    return mixture.means[k] + (chol[k] @ eps.unsqueeze(-1)).squeeze(-1)


class GMMSampler(FittedSampler):
    """`sampler=gmm`: a Gaussian mixture of `components` fitted to the training codes by EM."""

    name = "gmm"

    def __init__(
        self, components: int = 10, iterations: int = 100, tol: float = 1e-6, reg: float = 1e-6, seed: int = 0
    ):
        self.components = check_int("sampler.components", components, 1)
        self.iterations = check_int("sampler.iterations", iterations, 1)
        self.tol, self.reg = check_number("sampler.tol", tol, 0.0), check_number("sampler.reg", reg, 0.0)
        self.seed = check_int("seed", seed, 0)

    @property
    def source(self) -> str:
        return f"a {self.components}-component GMM fitted to the training codes"

    def fit_codes(self, codes: Tensor) -> None:
        if len(codes) < self.components:
            raise ConfigError(
                f"sampler.components={self.components} is more than the {len(codes)} training codes: give fewer"
            )
        generator = torch.Generator().manual_seed(self.seed)
        self.mixture, self.history = fit_gmm(
            codes.cpu(), self.components, self.iterations, self.tol, self.reg, generator
        )

    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return sample_gmm(self.mixture, n, generator)

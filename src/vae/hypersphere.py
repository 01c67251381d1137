"""The von Mises-Fisher distribution on the sphere S^(D-1) in R^D, and the uniform one: pure, typed maths for
`posterior=vmf` and `prior=uniform_sphere` (Davidson et al. 2018, "Hyperspherical Variational Auto-Encoders").

vMF(z; mu, kappa) = C_D(kappa) exp(kappa mu^T z) with respect to the sphere's surface measure, where
log C_D(kappa) = (D/2 - 1) log kappa - (D/2) log 2 pi - log I_(D/2-1)(kappa) and I_v is the modified Bessel
function of the first kind. log I_v of any order v comes from scipy's exponentially scaled `ive` (a dependency
of mlxtend's, so always installed) in float64, with its derivative d/dk log I_v(k) = I_(v+1)(k) / I_v(k) + v / k
(Abramowitz & Stegun 9.6.26) for autograd; where ive underflows (a high order at a small kappa) the series'
leading term v log(k/2) - log Gamma(v+1) takes over.
"""

import math

import numpy as np
import torch
from scipy.special import gammaln, ive
from torch import Tensor


def _log_iv_numpy(v: float, k: np.ndarray) -> np.ndarray:
    scaled = ive(v, k)  # I_v(k) exp(-k)
    with np.errstate(divide="ignore"):
        exact = np.log(scaled) + k
    leading = v * np.log(k / 2) - gammaln(v + 1)  # I_v(k) ~ (k/2)^v / Gamma(v+1) as k -> 0
    return np.where(scaled > 0, exact, leading)


class LogBessel(torch.autograd.Function):
    """log I_v(kappa) for a fixed order v >= 0 and kappa > 0 (any shape), differentiable in kappa."""

    @staticmethod
    def forward(ctx, v: float, kappa: Tensor) -> Tensor:
        k = kappa.detach().double().cpu().numpy()
        log_iv = _log_iv_numpy(v, k)
        derivative = np.exp(_log_iv_numpy(v + 1, k) - log_iv) + v / k  # I_(v+1) / I_v + v / k
        ctx.save_for_backward(torch.as_tensor(np.asarray(derivative)).to(kappa.device, kappa.dtype))
        return torch.as_tensor(np.asarray(log_iv)).to(kappa.device, kappa.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, Tensor]:
        (derivative,) = ctx.saved_tensors
        return None, grad * derivative


def log_bessel_iv(v: float, kappa: Tensor) -> Tensor:
    """log I_v(kappa), elementwise. kappa: (...) > 0 -> (...)"""
    return LogBessel.apply(v, kappa)


def log_sphere_area(dim: int) -> float:
    """log |S^(D-1)| = log(2 pi^(D/2) / Gamma(D/2)), the surface area of the unit sphere in R^D."""
    return math.log(2) + dim / 2 * math.log(math.pi) - math.lgamma(dim / 2)


def vmf_log_normaliser(kappa: Tensor, dim: int) -> Tensor:
    """log C_D(kappa) (Davidson et al. 2018, Eq. 3). kappa: (...) -> (...)"""
    v = dim / 2 - 1
    return v * kappa.log() - dim / 2 * math.log(2 * math.pi) - log_bessel_iv(v, kappa)


def vmf_log_prob(z: Tensor, mu: Tensor, kappa: Tensor) -> Tensor:
    """log vMF(z; mu, kappa) on S^(D-1). z, mu: (..., D) unit vectors; kappa: (..., 1) -> (...)"""
    return vmf_log_normaliser(kappa.squeeze(-1), z.shape[-1]) + kappa.squeeze(-1) * (mu * z).sum(dim=-1)


def vmf_mean_length(kappa: Tensor, dim: int) -> Tensor:
    """A_D(kappa) = I_(D/2)(kappa) / I_(D/2-1)(kappa) = E[mu^T z], the mean resultant length. (...) -> (...)"""
    return torch.exp(log_bessel_iv(dim / 2, kappa) - log_bessel_iv(dim / 2 - 1, kappa))


def vmf_kl_uniform(kappa: Tensor, dim: int) -> Tensor:
    """KL(vMF(mu, kappa) || U(S^(D-1))) = kappa A_D(kappa) + log C_D(kappa) + log |S^(D-1)| (Davidson et al. 2018,
    Eq. 5 and Appendix B), whatever mu. kappa: (...) -> (...)"""
    return kappa * vmf_mean_length(kappa, dim) + vmf_log_normaliser(kappa, dim) + log_sphere_area(dim)


def sample_vmf_cosine(kappa: Tensor, dim: int, max_rounds: int = 1000) -> Tensor:
    """w = mu^T z of z ~ vMF(mu, kappa) by Wood's (1994) rejection sampler (Davidson et al. 2018, Algorithm 1).

    Each round draws eps ~ Beta((D-1)/2, (D-1)/2) and u ~ U(0, 1) for the examples still waiting and keeps
    w = (1 - (1+b) eps) / (1 - (1-b) eps) where (D-1) log t - t + d >= log u. Gradients reach kappa through b
    (and a) with the accepted eps held fixed: the reparameterisation part g_rep of the paper's Eq. 9; its
    correction term g_cor, which the paper finds small, is left out. kappa: (...) -> w (...), in float64 inside.
    """
    m = dim - 1
    k = kappa.double()
    root = torch.sqrt(4 * k**2 + m**2)
    b = m / (2 * k + root)  # = (-2k + root) / m, without its cancellation at a large kappa
    a = (m + 2 * k + root) / 4
    d = 4 * a * b / (1 + b) - m * math.log(m) if m > 1 else 4 * a * b / (1 + b)
    beta = torch.distributions.Beta(torch.tensor(m / 2, dtype=torch.float64), torch.tensor(m / 2, dtype=torch.float64))
    w, done = torch.zeros_like(k), torch.zeros_like(k, dtype=torch.bool)
    for _ in range(max_rounds):
        eps = beta.sample(k.shape).to(k.device)
        u = torch.rand(k.shape, dtype=torch.float64, device=k.device)
        denominator = 1 - (1 - b) * eps
        t = 2 * a * b / denominator
        accept = (m * torch.log(t) - t + d >= torch.log(u)) & ~done
        w = torch.where(accept, (1 - (1 + b) * eps) / denominator, w)
        done = done | accept
        if bool(done.all()):
            return w.to(kappa.dtype)
    raise RuntimeError(f"Wood's sampler accepted no draw in {max_rounds} rounds for some kappa")  # never seen


def sample_vmf(mu: Tensor, kappa: Tensor) -> Tensor:
    """z ~ vMF(mu, kappa): w from Wood's sampler, v uniform on the sphere orthogonal to e1, z' = (w, sqrt(1-w^2) v),
    then the Householder reflection that takes e1 to mu (Davidson et al. 2018, Algorithm 1 and 3).
    mu: (..., D) unit vectors; kappa: (..., 1) -> z (..., D)"""
    dim = mu.shape[-1]
    w = sample_vmf_cosine(kappa, dim)  # (..., 1)
    v = torch.nn.functional.normalize(torch.randn(*mu.shape[:-1], dim - 1, device=mu.device), dim=-1)  # (..., D-1)
    z = torch.cat([w, torch.sqrt((1 - w**2).clamp_min(0)) * v], dim=-1)  # (..., D) around e1
    e1 = torch.zeros_like(mu)
    e1[..., 0] = 1
    u = torch.nn.functional.normalize(e1 - mu, dim=-1, eps=1e-12)  # the mirror's normal; 0 when mu = e1
    return z - 2 * (z * u).sum(dim=-1, keepdim=True) * u

"""Gradient estimators built from a Draw's pieces: stop-gradients and surrogates whose value is the bound's
and whose gradient is another estimator's.

With A = log p(x|z) + log p(z) (the generative densities, parameters theta) and Q = log q(z|x) at z = g(eps, phi):
- sticking the landing, STL (Roeder et al. 2017, "Sticking the Landing", Eq. 8): Q with q's parameters stopped
  (`log_q_stopped`), so phi's gradient is the path derivative alone, which vanishes when q is the true posterior;
- doubly reparameterised, DReG (Tucker et al. 2019, "Doubly Reparameterized Gradient Estimators for Monte Carlo
  Objectives", Eq. 5): phi's IWAE gradient as sum_k w~_k^2 d(A - Q_stopped)/dz dz/dphi, theta's unchanged;
- a routed gradient (`routed`): theta's from one weighting of the draws and phi's from another (PIWAE, DReG).

Routing splits the two by where gradients enter: theta reaches the loss only through A's own parameters, phi through
z and Q. With h = dA/dz (one extra backward to z), sum_k a_k (A_k - sg(h_k) . z_k) moves theta alone and
sum_k b_k (sg(h_k) . z_k - Q_k) moves phi alone. (A prior whose density passes the encoder, VampPrior, gives the
encoder a generative share too.)
"""

import torch
from torch import Tensor

from vae.distributions import log_normal
from vae.draw import Draw
from vae.errors import ConfigError

ESTIMATORS = ("reparam", "stl", "dreg")


def check_gradient(gradient: str, objective: str, valid: tuple[str, ...]) -> str:
    """objective.gradient as one of `valid`, or a ConfigError naming it and what is valid."""
    if gradient not in valid:
        raise ConfigError(
            f"objective.gradient={gradient} does not apply to objective={objective}: choose one of {', '.join(valid)}"
        )
    return gradient


def log_q_stopped(draw: Draw) -> Tensor:
    """log q(z|x) with q's parameters (mu, logvar) detached and z live, (K, B): STL's and DReG's density."""
    if draw.gaussian is None:
        raise ConfigError(
            "objective.gradient=stl or dreg needs posterior=gaussian: it evaluates q(z|x) with its parameters stopped"
        )
    mu, logvar = draw.gaussian  # (B, D) each
    return log_normal(draw.z, mu.detach(), logvar.detach())


def generative_grad_z(draw: Draw) -> Tensor:
    """h = d(log p(x|z) + log p(z))/dz for each draw, (K, B, D), detached; zeros where no gradient is being taken."""
    if not (torch.is_grad_enabled() and draw.z.requires_grad):
        return torch.zeros_like(draw.z)
    (h,) = torch.autograd.grad((draw.log_px_z + draw.log_pz).sum(), draw.z, retain_graph=True, allow_unused=True)
    return torch.zeros_like(draw.z) if h is None else h.detach()


def routed(draw: Draw, theta_weights: Tensor, phi_weights: Tensor, log_q: Tensor) -> Tensor:
    """A (B,) term of value 0 whose gradient is sum_k a_k grad_theta A_k + sum_k b_k grad_phi (A_k - log_q_k).

    theta_weights a, phi_weights b: (K, B), detached here; log_q: (K, B), Q or Q with q's parameters stopped.
    """
    a, b = theta_weights.detach(), phi_weights.detach()
    through_z = (generative_grad_z(draw) * draw.z).sum(dim=-1)  # (K, B): sg(h) . z
    generative = draw.log_px_z + draw.log_pz
    term = (a * (generative - through_z)).sum(dim=0) + (b * (through_z - log_q)).sum(dim=0)  # (B,)
    return term - term.detach()

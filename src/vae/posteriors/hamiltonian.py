"""A Hamiltonian flow on a diagonal Gaussian (Caterini et al. 2018, "Hamiltonian Variational Auto-Encoder",
Sec. 4, Alg. 2; pythae's HVAE): z0 ~ q(z0|x), a momentum rho0 ~ N(0, I / beta_0), then K leapfrog steps of
the Hamiltonian H(z, rho) = -log p(x, z) + |rho|^2 / 2, each followed by tempering: rho is scaled by
sqrt(beta_(k-1) / beta_k) with the quadratic schedule 1 / sqrt(beta_k) = 1 + (1 / sqrt(beta_0) - 1)(1 - k^2 / K^2)
(Eq. 11), so beta_K = 1. Leapfrog keeps volume, tempering scales it by (beta_(k-1) / beta_k)^(D/2), so

    ELBO = log p(x, z_K) + log N(rho_K | 0, I) - log q(z0|x) - log N(rho0 | 0, I / beta_0) + (D/2) log beta_0,

which the Draw carries as log_qz_x = log q(z0|x) + log N(rho0 | 0, I / beta_0) - (D/2) log beta_0 - log N(rho_K | 0, I)
at z = z_K. The step size and beta_0 are learned (through exp and a sigmoid: positive, and in (0, 1)). With
`steps=0` the momentum is tempered to beta = 1 at once, and the bound is the Gaussian ELBO exactly.

The steps need the gradient of log p(x, z) in z, so this posterior declares `needs_log_joint` and the family hands
it `log_joint(z)` (K, B, D) -> (K, B); in training the gradient is kept in the graph (create_graph), so the encoder,
the decoder, the step size and beta_0 all learn through the flow.
"""

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from vae.distributions import log_normal, log_standard_normal, reparameterize
from vae.errors import ConfigError, check_int, check_number
from vae.posteriors.gaussian import GaussianPosterior

LogJoint = Callable[[Tensor], Tensor]  # z (K, B, D) -> log p(x, z) (K, B)


def grad_log_joint(log_joint: LogJoint, z: Tensor, create_graph: bool) -> Tensor:
    """d log p(x, z) / dz (K, B, D) = -grad U; with create_graph the result stays differentiable (training).

    Evaluation runs under no_grad or inference mode (Lightning's test loop); the gradient is still taken, there,
    on a fresh copy of z."""
    with torch.inference_mode(False), torch.enable_grad():
        z = z if create_graph else z.clone().detach().requires_grad_()
        (grad,) = torch.autograd.grad(log_joint(z).sum(), z, create_graph=create_graph)  # examples are independent
    return grad


def leapfrog(z: Tensor, rho: Tensor, grad: Tensor, step: Tensor | float, grad_log_p) -> tuple[Tensor, Tensor, Tensor]:
    """One leapfrog step of H = -log p(z) + |rho|^2 / 2 (Neal 2011, Eq. 5.18-5.20); `grad` is d log p / dz at z.

    z, rho, grad: (..., D) -> z, rho and the gradient at the new z, each (..., D). Volume-preserving and reversible.
    """
    rho = rho + 0.5 * step * grad  # half a step of momentum
    z = z + step * rho
    grad = grad_log_p(z)
    return z, rho + 0.5 * step * grad, grad


def tempering(sqrt_beta_0: Tensor, k: int, steps: int) -> Tensor:
    """sqrt(beta_k) of the quadratic schedule (Caterini et al. 2018, Eq. 11): sqrt(beta_0) at k = 0, exactly 1 at K."""
    return 1.0 / (1.0 + (1.0 / sqrt_beta_0 - 1.0) * (1.0 - (k / steps) ** 2))


class HamiltonianPosterior(nn.Module):
    """A diagonal Gaussian q(z0|x), then `steps` tempered leapfrog steps towards p(z|x)."""

    diagonal_gaussian = False  # the flow leaves the Gaussian family
    has_log_q = True
    on_sphere = False
    needs_log_joint = True  # its steps follow the gradient of log p(x, z): the family passes log_joint

    def __init__(self, in_features: int, latent_dim: int, steps: int = 3, step_size: float = 0.01, beta_0: float = 0.3):
        super().__init__()
        self.latent_dim = check_int("latent", latent_dim, 1)
        self.steps = check_int("posterior.steps", steps, 0)
        if check_number("posterior.step_size", step_size, 0.0) == 0.0:
            raise ConfigError("posterior.step_size=0 is invalid: the leapfrog step must be > 0 (e.g. 0.01)")
        if not 0.0 < check_number("posterior.beta_0", beta_0, 0.0) < 1.0:
            raise ConfigError(f"posterior.beta_0={beta_0} is invalid: the initial inverse temperature must be in (0, 1)")
        self.gaussian = GaussianPosterior(in_features, latent_dim)
        self.log_step_size = nn.Parameter(torch.tensor(math.log(step_size)))  # step = exp(.) > 0
        self.beta_0_logit = nn.Parameter(torch.tensor(math.log(beta_0 / (1.0 - beta_0))))  # beta_0 = sigmoid(.)

    def base(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return self.gaussian.base(h)

    def forward(self, h: Tensor, k: int = 1, log_joint: LogJoint | None = None) -> tuple[Tensor, Tensor, None]:
        assert log_joint is not None, "a family passes log_joint to a posterior that declares needs_log_joint"
        mu, logvar = self.base(h)  # (B, D) each
        z0 = reparameterize(mu.expand(k, *mu.shape), logvar.expand(k, *logvar.shape))  # (K, B, D)
        beta_0 = torch.sigmoid(self.beta_0_logit)
        rho0 = torch.randn_like(z0) / beta_0.sqrt()  # (K, B, D) ~ N(0, I / beta_0)
        z, rho = self.flow(z0, rho0, beta_0, log_joint)
        log_rho0 = log_normal(rho0, torch.zeros_like(rho0), -beta_0.log().expand_as(rho0))  # (K, B)
        log_q = log_normal(z0, mu, logvar) + log_rho0 - 0.5 * self.latent_dim * beta_0.log() - log_standard_normal(rho)
        return z, log_q, None

    def flow(self, z: Tensor, rho: Tensor, beta_0: Tensor, log_joint: LogJoint) -> tuple[Tensor, Tensor]:
        """(z0, rho0) (K, B, D) each -> (z_K, rho_K), tempered to beta_K = 1."""
        create_graph = torch.is_grad_enabled()  # training: learn through the steps; evaluation: no second graph
        step, sqrt_beta = self.log_step_size.exp(), beta_0.sqrt()
        if self.steps == 0:
            return z, rho * sqrt_beta
        grad = grad_log_joint(log_joint, z, create_graph)
        for k in range(1, self.steps + 1):
            z, rho, grad = leapfrog(z, rho, grad, step, lambda z: grad_log_joint(log_joint, z, create_graph))
            sqrt_beta_k = tempering(beta_0.sqrt(), k, self.steps)
            rho, sqrt_beta = rho * (sqrt_beta / sqrt_beta_k), sqrt_beta_k
        return z, rho

    def mean(self, h: Tensor) -> Tensor:
        """The base mean: the flow needs x's log p(x, z), which a code for pictures and metrics goes without."""
        return self.base(h)[0]

    def kl(self, h: Tensor, prior) -> None:
        """No closed form: the bound's KL is the Monte Carlo estimate of the Draw."""
        return None

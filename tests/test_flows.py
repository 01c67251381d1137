"""posterior=planar and posterior=radial (Rezende & Mohamed 2015): log q against the change of variables with the
Jacobian taken by autograd, the invertibility constraints, and a short fit whose ELBO is finite."""

import math

import pytest
import torch
from torch.autograd.functional import jacobian

from conftest import TINY, make_config
from vae.distributions import log_normal
from vae.posteriors.planar import PlanarPosterior, planar_u_hat
from vae.posteriors.radial import RadialPosterior, radial_alpha_beta
from vae.training import train

FLOWS = {"planar": PlanarPosterior, "radial": RadialPosterior}


def scaled(posterior, scale: float):
    """Push the amortised parameters far from their start, so the checks see strongly bent flows too."""
    with torch.no_grad():
        posterior.to_params.weight.mul_(scale)
        posterior.to_params.bias.normal_(0, scale)
    return posterior


@pytest.mark.parametrize("name", FLOWS)
@pytest.mark.parametrize("scale", [1.0, 5.0])
def test_log_q_is_the_base_density_minus_the_log_det_of_the_autograd_jacobian(name, scale):
    torch.manual_seed(0)
    dim = 3
    posterior = scaled(FLOWS[name](in_features=5, latent_dim=dim, flows=4), scale)
    h = torch.randn(4, 5)
    torch.manual_seed(1)
    z, log_q, gaussian = posterior(h, k=2)  # (2, 4, D), (2, 4)
    assert z.shape == (2, 4, dim) and log_q.shape == (2, 4) and gaussian is None
    torch.manual_seed(1)
    mu, logvar = posterior.base(h)
    z0 = mu + torch.exp(0.5 * logvar) * torch.randn(2, *mu.shape)  # the same base draws: reparameterize's recipe
    params = posterior.to_params(h).float()  # (4, N * P)
    for k in range(2):
        for b in range(4):
            flow = lambda v: posterior.flow(v, params[b])[0]  # noqa: E731  (D,) -> (D,), one example
            J = jacobian(flow, z0[k, b])  # (D, D)
            torch.testing.assert_close(flow(z0[k, b]), z[k, b])
            expected = log_normal(z0[k, b], mu[b], logvar[b]) - torch.linalg.slogdet(J).logabsdet
            torch.testing.assert_close(log_q[k, b], expected, rtol=1e-4, atol=1e-4)


def test_planar_u_hat_keeps_w_u_above_minus_one_however_u_and_w_are_drawn():
    torch.manual_seed(0)
    u, w = 10 * torch.randn(1000, 4, dtype=torch.float64), 10 * torch.randn(1000, 4, dtype=torch.float64)
    u[:500] = -w[:500] * 3  # w^T u far below -1 before the correction
    u_hat, wu_hat = planar_u_hat(u, w)
    assert (w * u_hat).sum(-1).min() >= -1 - 1e-9  # the constraint w^T u_hat >= -1, up to rounding
    torch.testing.assert_close((w * u_hat).sum(-1, keepdim=True), wu_hat)
    torch.testing.assert_close(wu_hat, torch.nn.functional.softplus((w * u).sum(-1, keepdim=True)) - 1)


def test_radial_beta_stays_above_minus_alpha_and_alpha_positive():
    a, b = torch.linspace(-30, 30, 201)[:, None], torch.linspace(-30, 30, 201)[None, :]
    alpha, beta = radial_alpha_beta(a.expand(201, 201), b.expand(201, 201))
    assert (alpha > 0).all() and (beta >= -alpha).all()


@pytest.mark.parametrize("name", FLOWS)
def test_strongly_bent_flows_keep_a_finite_log_q_and_invertible_steps(name):
    torch.manual_seed(0)
    posterior = scaled(FLOWS[name](in_features=5, latent_dim=2, flows=8), 20.0)
    z, log_q, _ = posterior(torch.randn(64, 5), k=4)
    assert torch.isfinite(z).all() and torch.isfinite(log_q).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", FLOWS)
def test_a_flow_posterior_trains_and_reports_a_finite_elbo_and_log_px(tmp_path, name):
    results = train(make_config(tmp_path, [*TINY, f"posterior={name}", "posterior.flows=3", "nll_samples=4"]))
    for metric in ("test/elbo", "test/nll", "test/kl", "val/elbo"):
        assert math.isfinite(results[metric]), (metric, results)
    assert (
        results["test/nll"] <= -results["test/elbo"] + 5
    )  # the 4-sample bound is no looser than the ELBO, up to noise

"""posterior=vmf with prior=uniform_sphere (Davidson et al. 2018): the density integrates to one on S^1 and S^2,
samples' mean resultant length is A_D(kappa), the closed-form KL matches Monte Carlo, the log normaliser
matches scipy, the uniform prior draws points on the sphere, and a short fit reports finite figures."""

import math

import pytest
import torch
from scipy import special

from conftest import TINY, make_config
from vae.hypersphere import (
    log_bessel_iv,
    log_sphere_area,
    sample_vmf,
    vmf_kl_uniform,
    vmf_log_normaliser,
    vmf_log_prob,
    vmf_mean_length,
)
from vae.posteriors.vmf import VMFPosterior
from vae.priors.uniform_sphere import UniformSphere
from vae.training import train

KAPPAS = [0.3, 4.0, 60.0]


def unit(*shape: int) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(*shape, dtype=torch.float64), dim=-1)


@pytest.mark.parametrize("kappa", KAPPAS)
def test_the_density_integrates_to_one_on_the_circle(kappa):
    torch.manual_seed(0)
    theta = torch.linspace(0, 2 * math.pi, 20001, dtype=torch.float64)
    z = torch.stack([theta.cos(), theta.sin()], dim=-1)  # (N, 2)
    density = vmf_log_prob(z, unit(2), torch.tensor([kappa], dtype=torch.float64)).exp()
    assert torch.trapezoid(density, theta).item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("kappa", KAPPAS)
def test_the_density_integrates_to_one_on_the_sphere(kappa):
    torch.manual_seed(0)
    theta = torch.linspace(0, math.pi, 1501, dtype=torch.float64)[:, None]  # polar angle
    phi = torch.linspace(0, 2 * math.pi, 1501, dtype=torch.float64)[None, :]
    z = torch.stack([theta.sin() * phi.cos(), theta.sin() * phi.sin(), theta.cos().expand_as(phi * theta)], dim=-1)
    density = vmf_log_prob(z, unit(3), torch.tensor([kappa], dtype=torch.float64)).exp() * theta.sin()  # (T, P)
    integral = torch.trapezoid(torch.trapezoid(density, phi[0], dim=1), theta[:, 0])
    assert integral.item() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("dim", [2, 3, 10, 64])
@pytest.mark.parametrize("kappa", [1.0, 10.0, 300.0])
def test_draws_lie_on_the_sphere_with_the_mean_resultant_length_a_d_of_kappa(dim, kappa):
    torch.manual_seed(0)
    mu = unit(dim).float()
    z = sample_vmf(mu.expand(40000, dim), torch.full((40000, 1), kappa))  # (N, D)
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(40000), atol=1e-5, rtol=0)
    mean = z.double().mean(dim=0)
    expected = vmf_mean_length(torch.tensor(kappa, dtype=torch.float64), dim)
    assert mean.norm().item() == pytest.approx(expected.item(), abs=4 / math.sqrt(40000))
    assert (mean / mean.norm() @ mu.double()).item() > 0.99 if kappa > 1 else True  # around mu


def test_the_log_normaliser_and_bessel_function_match_scipy_and_the_closed_form_on_s2():
    kappa = torch.tensor([0.01, 0.5, 3.0, 40.0, 600.0], dtype=torch.float64)
    for v in (0.0, 0.5, 1.5, 4.0, 31.0):  # where scipy's iv does not overflow
        expected = torch.from_numpy(special.iv(v, kappa[:4].numpy())).log()
        torch.testing.assert_close(log_bessel_iv(v, kappa[:4]), expected)
    s2 = kappa / (4 * math.pi * torch.sinh(kappa))  # C_3(kappa) = kappa / (4 pi sinh kappa)
    torch.testing.assert_close(vmf_log_normaliser(kappa[:4], 3), s2[:4].log())
    assert torch.isfinite(vmf_log_normaliser(torch.tensor([1.0, 1e4]), 512)).all()  # high order: no under- or overflow
    k = torch.tensor([0.7, 5.0, 90.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: log_bessel_iv(7.5, x), (k,))


@pytest.mark.parametrize("dim", [3, 16])
@pytest.mark.parametrize("kappa", [1.5, 25.0])
def test_the_closed_form_kl_to_the_uniform_prior_matches_monte_carlo(dim, kappa):
    torch.manual_seed(0)
    mu, kappas = unit(dim).float(), torch.full((50000, 1), kappa)
    z = sample_vmf(mu.expand(50000, dim), kappas)
    monte_carlo = (vmf_log_prob(z, mu, kappas) - UniformSphere(dim).log_prob(z)).double()
    closed = vmf_kl_uniform(torch.tensor(kappa, dtype=torch.float64), dim).item()
    assert monte_carlo.mean().item() == pytest.approx(
        closed, abs=4 * monte_carlo.std().item() / math.sqrt(50000) + 1e-4
    )
    assert closed > 0


def test_the_uniform_prior_draws_points_on_the_sphere_spread_evenly():
    prior = UniformSphere(latent_dim=5)
    z = prior.sample(20000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(20000))
    assert z.mean(dim=0).abs().max() < 0.03  # no preferred direction
    assert prior.log_prob(z[:3]).tolist() == pytest.approx([-log_sphere_area(5)] * 3)
    assert log_sphere_area(3) == pytest.approx(math.log(4 * math.pi))


def test_the_posterior_draws_on_the_sphere_and_gradients_reach_both_its_direction_and_its_concentration():
    torch.manual_seed(0)
    posterior = VMFPosterior(in_features=6, latent_dim=4)
    h = torch.randn(5, 6)
    z, log_q, gaussian = posterior(h, k=3)  # (3, 5, 4), (3, 5)
    assert z.shape == (3, 5, 4) and log_q.shape == (3, 5) and gaussian is None
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(3, 5))
    kl = posterior.kl(h, UniformSphere(4))
    assert kl.shape == (5,) and (kl > 0).all()
    (z[..., 0].sum() + kl.sum()).backward()
    grad = posterior.head.weight.grad
    assert torch.isfinite(grad).all() and grad[:4].abs().sum() > 0 and grad[4].abs().sum() > 0  # mu's rows, kappa's row


@pytest.mark.slow
def test_a_vmf_model_trains_and_reports_finite_figures(tmp_path):
    results = train(
        make_config(tmp_path, [*TINY, "posterior=vmf", "prior=uniform_sphere", "latent=4", "nll_samples=4"])
    )
    for metric in ("test/elbo", "test/nll", "test/kl", "val/elbo"):
        assert math.isfinite(results[metric]), (metric, results)
    assert results["test/kl"] > 0  # the closed form against the uniform prior

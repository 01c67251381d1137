"""posterior=hamiltonian (Caterini et al. 2018; pythae's HVAE): the leapfrog integrator against the exact facts of
Hamiltonian dynamics (energy kept to O(eps^2), volume kept exactly), the bound against the Gaussian ELBO at zero steps,
training through the flow, and the families and settings it cannot work with refused in one line.
"""

import math
import re

import pytest
import torch
from omegaconf import OmegaConf

from conftest import TINY, make_config
from vae.distributions import log_normal
from vae.errors import user_error_message
from vae.posteriors.hamiltonian import leapfrog, tempering
from vae.system import System
from vae.training import train

SMALL = ["model.hidden=[16]", "latent=3", "posterior=hamiltonian"]
A = torch.tensor([1.0, 4.0], dtype=torch.float64)  # log p(z) = -z^T diag(A) z / 2: a quadratic potential


def energy(z: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    return 0.5 * (A * z * z).sum(-1) + 0.5 * (rho * rho).sum(-1)


def largest_energy_error(step: float, time: float = 2.0) -> float:
    z, rho = torch.tensor([1.0, -0.5], dtype=torch.float64), torch.tensor([0.3, 0.8], dtype=torch.float64)
    start, worst, grad = energy(z, rho), 0.0, -A * z
    for _ in range(round(time / step)):
        z, rho, grad = leapfrog(z, rho, grad, step, lambda z: -A * z)
        worst = max(worst, float((energy(z, rho) - start).abs()))
    return worst


def test_leapfrog_keeps_the_energy_of_a_quadratic_potential_to_second_order_in_the_step():
    coarse, fine = largest_energy_error(0.1), largest_energy_error(0.05)
    assert 0 < coarse < 0.05 and 3.5 < coarse / fine < 4.5, (coarse, fine)  # halving the step quarters the error


def test_one_leapfrog_step_keeps_volume():
    def step(state: torch.Tensor) -> torch.Tensor:  # a non-quadratic potential: log p(z) = -sum(z^4 / 4 + sin z)
        z, rho = state.chunk(2)
        z, rho, _ = leapfrog(z, rho, -(z**3) - torch.cos(z), 0.3, lambda z: -(z**3) - torch.cos(z))
        return torch.cat([z, rho])

    jacobian = torch.autograd.functional.jacobian(step, torch.tensor([0.7, -1.2, 0.4, 0.9, -0.3, 1.1], dtype=torch.float64))
    assert not torch.allclose(jacobian, torch.eye(6, dtype=torch.float64), atol=0.1)  # the step does move the state
    assert float(torch.linalg.det(jacobian)) == pytest.approx(1.0, abs=1e-12)


def test_the_tempering_schedule_runs_from_beta_0_to_one():
    sqrt_beta_0 = torch.tensor(0.3).sqrt()
    assert float(tempering(sqrt_beta_0, 0, 3)) == pytest.approx(float(sqrt_beta_0))
    assert float(tempering(sqrt_beta_0, 3, 3)) == 1.0
    assert float(tempering(sqrt_beta_0, 1, 3)) < float(tempering(sqrt_beta_0, 2, 3)) < 1.0


def model(tmp_path, *overrides):
    return System(OmegaConf.to_container(make_config(tmp_path, [*SMALL, *overrides]), resolve=True)).model


def test_with_no_steps_the_bound_is_the_gaussian_elbo_draw_by_draw(tmp_path):
    torch.manual_seed(0)
    family, x = model(tmp_path, "posterior.steps=0"), torch.rand(5, 1, 28, 28)
    draw = family.draw(x, k=4)
    gaussian_elbo = draw.log_px_z + draw.log_pz - log_normal(draw.z, *family.base(x))  # (K, B)
    torch.testing.assert_close(draw.log_w, gaussian_elbo, atol=1e-4, rtol=0)


def test_the_steps_move_the_codes_and_every_parameter_learns_through_them(tmp_path):
    torch.manual_seed(0)
    family, x = model(tmp_path, "posterior.steps=2", "posterior.step_size=0.2"), torch.rand(5, 1, 28, 28)
    draw = family.draw(x, k=3)
    assert not torch.allclose(draw.z.mean(0), family.base(x)[0], atol=0.05)  # z_K is not z0
    (-draw.log_w.mean()).backward()
    silent = [name for name, p in family.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not silent, silent  # the step size, beta_0, encoder and decoder all get a gradient
    with torch.no_grad():  # evaluation: the steps still take their gradient in z, and leave no graph behind
        draw = family.draw(x, k=2)
    assert torch.isfinite(draw.log_w).all() and not draw.z.requires_grad and not draw.log_qz_x.requires_grad


RUNS = {"vae": [], "cvae": ["family=cvae", "objective=iwae", "objective.k=2"]}


@pytest.mark.parametrize("run", [r if r == "vae" else pytest.param(r, marks=pytest.mark.slow) for r in RUNS])
def test_a_few_steps_train_with_finite_figures(tmp_path, run):
    results = train(make_config(tmp_path, [*TINY, *SMALL, "posterior.steps=2", "nll_samples=4", *RUNS[run]]))
    assert math.isfinite(results["test/elbo"]) and results["test/elbo"] < 0 and math.isfinite(results["test/nll"])


REFUSALS = [
    (["family=hvae"], r"^family=hvae takes no posterior=hamiltonian: its steps move the whole code along log p\(x, z\)"),
    (["family=ladder"], r"^family=ladder takes posterior=gaussian, not posterior=hamiltonian"),
    (["family=vqvae"], r"^family=vqvae takes no posterior= or prior="),
    (["model.compile=true"], r"^posterior=hamiltonian does not combine with model.compile=true: "),
    (["objective=dip_vae"], r"^objective=dip_vae needs posterior=gaussian: "),
    (["posterior.beta_0=1.0"], r"^posterior.beta_0=1.0 is invalid: the initial inverse temperature must be in \(0, 1\)$"),
    (["posterior.step_size=0"], r"^posterior.step_size=0 is invalid: the leapfrog step must be > 0"),
    (["posterior.steps=-1"], r"^posterior.steps=-1 is invalid: it must be an integer >= 0$"),
]


@pytest.mark.parametrize("overrides, message", REFUSALS)
def test_what_it_cannot_work_with_is_refused_in_one_line(tmp_path, overrides, message):
    with pytest.raises(Exception) as caught:  # a constructor's error arrives wrapped by Hydra's instantiate
        model(tmp_path, *overrides)
    assert user_error_message(caught.value) and re.search(message, user_error_message(caught.value)), (
        user_error_message(caught.value)
    )

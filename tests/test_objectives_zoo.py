"""The new objectives' maths against independent oracles: MMD by an explicit double loop, the DIP covariances by
torch.cov, the tighter bounds by a loop over groups, and the gradient estimators by autograd on a tiny Gaussian model
(PIWAE's and DReG's routed gradients exactly, DReG's encoder gradient in expectation, STL's zero at the true posterior).
"""

import math
from types import SimpleNamespace

import pytest
import torch
from torch.distributions import Normal

from vae.draw import Draw
from vae.errors import ConfigError
from vae.objectives.dip_vae import DIPVAE, dip_covariance, dip_penalty
from vae.objectives.elbo import ELBO
from vae.objectives.infovae import InfoVAE
from vae.objectives.iwae import IWAE
from vae.objectives.mmd import mmd
from vae.objectives.tighter_bounds import CIWAE, MIWAE, PIWAE
from vae.objectives.wae import WAE
from vae.schedules import Constant


def mmd_by_loop(a: torch.Tensor, b: torch.Tensor, kernel: str, scale: float) -> float:
    """The U-statistic written out term by term (Gretton et al. 2012, Lemma 6)."""
    c = 2 * a.shape[1] * scale**2

    def k(u, v):
        d2 = float(((u - v) ** 2).sum())
        return c / (c + d2) if kernel == "imq" else math.exp(-d2 / c)

    n = len(a)
    within_a = sum(k(a[i], a[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    within_b = sum(k(b[i], b[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    across = sum(k(a[i], b[j]) for i in range(n) for j in range(n)) / n**2
    return within_a + within_b - 2 * across


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_mmd_is_the_u_statistic_and_vanishes_only_between_equal_distributions(kernel):
    gen = torch.Generator().manual_seed(0)
    a, b = (
        torch.randn(7, 3, generator=gen, dtype=torch.float64),
        torch.randn(7, 3, generator=gen, dtype=torch.float64) + 0.5,
    )
    assert float(mmd(a, b, kernel, 0.7)) == pytest.approx(mmd_by_loop(a, b, kernel, 0.7), rel=1e-10)
    same = torch.stack(
        [mmd(torch.randn(20, 2, generator=gen), torch.randn(20, 2, generator=gen), kernel) for _ in range(400)]
    )
    assert abs(float(same.mean())) < 4 * float(same.std()) / 20  # unbiased: zero in expectation
    shifted = torch.stack(
        [mmd(torch.randn(20, 2, generator=gen) + 1.0, torch.randn(20, 2, generator=gen), kernel) for _ in range(50)]
    )
    assert float(shifted.mean()) > 10 * float(same.std()) / 20


def gaussian_draw(mu, logvar, eps, x, theta):
    """A tiny Gaussian model by torch.distributions: q(z|x) = N(mu, exp(logvar)), p(z) = N(0, 1), p(x|z) = N(theta z, 1).

    mu, logvar: (B, D) encoder outputs; eps: (K, B, D); x: (B,); theta: a scalar decoder weight.
    """
    q = Normal(mu, (0.5 * logvar).exp())
    z = mu + (0.5 * logvar).exp() * eps  # (K, B, D)
    log_px_z = Normal(theta * z.sum(-1), 1.0).log_prob(x)  # (K, B)
    return Draw(log_px_z, Normal(0.0, 1.0).log_prob(z).sum(-1), q.log_prob(z).sum(-1), z, gaussian=(mu, logvar))


def random_draw(k=6, b=4, d=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    mu, logvar = torch.randn(b, d, generator=gen), torch.randn(b, d, generator=gen) * 0.3
    return gaussian_draw(mu, logvar, torch.randn(k, b, d, generator=gen), torch.randn(b, generator=gen), 0.8)


def test_wae_and_infovae_weigh_the_mmd_against_the_familys_prior_draws():
    draw = random_draw(k=1, b=5)
    prior = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    penalty = mmd_by_loop(draw.z[0].double(), prior.double(), "imq", 1.0)
    rec, kl = -draw.log_px_z[0], draw.kl_estimate
    wae = WAE(lam=3.0)
    wae.attach(SimpleNamespace(sample_latents=lambda n: prior[:n]))
    torch.testing.assert_close(wae(draw, 0)["loss"], rec + 3.0 * penalty)
    info = InfoVAE(alpha=0.25, lam=2.0, kernel="imq")
    info.attach(SimpleNamespace(sample_latents=lambda n: prior[:n]))
    torch.testing.assert_close(info(draw, 0)["loss"], rec + 0.75 * kl + 1.25 * penalty)
    with pytest.raises(ConfigError, match=r"^objective.alpha=1.5 with objective.lam=1.0 is invalid"):
        InfoVAE(alpha=1.5, lam=1.0)


@pytest.mark.parametrize("kind", ["i", "ii"])
def test_dip_vae_penalises_the_codes_covariance_against_the_identity(kind):
    draw = random_draw(k=1, b=9, d=3)
    mu, logvar = draw.gaussian
    expected = torch.cov(mu.T, correction=0) + (torch.diag(logvar.exp().mean(0)) if kind == "ii" else 0)
    cov = dip_covariance(mu, logvar, kind)
    torch.testing.assert_close(cov, expected)
    loop = sum(2.0 * cov[i, j] ** 2 for i in range(3) for j in range(3) if i != j) + sum(
        5.0 * (cov[i, i] - 1) ** 2 for i in range(3)
    )
    torch.testing.assert_close(dip_penalty(cov, 2.0, 5.0), loop)
    objective = DIPVAE(type=kind, lambda_od=2.0, lambda_d=5.0, schedule=Constant(1.0))
    terms = objective(draw, 0)
    torch.testing.assert_close(terms["loss"], terms["rec"] + terms["kl"] + loop)
    assert DIPVAE(type=kind).lambda_d == (100.0 if kind == "i" else 10.0)  # Kumar et al.'s choice


def test_miwae_and_ciwae_match_a_loop_over_groups():
    draw = random_draw(k=6)
    log_w = draw.log_w  # (6, B)
    for m, group in ((2, 3), (3, 2), (1, 6), (6, 1)):
        by_loop = sum(torch.logsumexp(log_w[i * group : (i + 1) * group], 0) - math.log(group) for i in range(m)) / m
        torch.testing.assert_close(MIWAE(m=m, k=group)(draw, 0)["loss"], -by_loop)
    iwae = torch.logsumexp(log_w, 0) - math.log(6)
    torch.testing.assert_close(MIWAE(m=1, k=6)(draw, 0)["loss"], IWAE(k=6)(draw, 0)["loss"])
    torch.testing.assert_close(CIWAE(beta=0.3, k=6)(draw, 0)["loss"], -(0.3 * log_w.mean(0) + 0.7 * iwae))


def grads(loss, *params):
    return torch.autograd.grad(loss, params, retain_graph=True)


def encoder_and_decoder(b=3, d=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    phi = (torch.randn(b, d, generator=gen).requires_grad_(), (0.3 * torch.randn(b, d, generator=gen)).requires_grad_())
    theta = torch.tensor(0.7, requires_grad=True)
    return phi, theta, torch.randn(b, generator=gen)


def test_piwae_gives_the_decoder_the_iwae_gradient_and_the_encoder_the_miwae_gradient():
    (mu, logvar), theta, x = encoder_and_decoder()
    draw = gaussian_draw(mu, logvar, torch.randn(6, 3, 2, generator=torch.Generator().manual_seed(1)), x, theta)
    surrogate = PIWAE(m=2, k=3)(draw, 0)["loss"].sum()
    iwae, miwae = IWAE(k=6)(draw, 0)["loss"].sum(), MIWAE(m=2, k=3)(draw, 0)["loss"].sum()
    torch.testing.assert_close(surrogate, iwae)  # its value is the IWAE bound's
    torch.testing.assert_close(grads(surrogate, theta), grads(iwae, theta))
    torch.testing.assert_close(grads(surrogate, mu, logvar), grads(miwae, mu, logvar))


def test_dreg_keeps_the_decoder_gradient_and_the_encoder_gradient_in_expectation_with_less_variance():
    replicas, k = 4000, 8
    (mu, logvar), theta, _ = encoder_and_decoder(b=1, d=1)
    mu = (
        mu.detach().expand(replicas, 1).clone().requires_grad_()
    )  # one encoder output per replica: per-replica gradients
    logvar = logvar.detach().expand(replicas, 1).clone().requires_grad_()
    x = torch.full((replicas,), 1.5)
    draw = gaussian_draw(mu, logvar, torch.randn(k, replicas, 1, generator=torch.Generator().manual_seed(2)), x, theta)
    dreg, iwae = IWAE(k=k, gradient="dreg")(draw, 0)["loss"].sum(), IWAE(k=k)(draw, 0)["loss"].sum()
    torch.testing.assert_close(dreg, iwae)
    torch.testing.assert_close(grads(dreg, theta), grads(iwae, theta))  # the same draws: exactly
    for dreg_grad, iwae_grad in zip(grads(dreg, mu, logvar), grads(iwae, mu, logvar)):  # (replicas, 1) each
        error = (dreg_grad.var() / replicas + iwae_grad.var() / replicas).sqrt()
        assert abs(float(dreg_grad.mean() - iwae_grad.mean())) < 4 * float(error)
        assert dreg_grad.var() < iwae_grad.var()


@pytest.mark.parametrize(
    "objective", [ELBO(Constant(1.0), k=3, gradient="stl"), IWAE(k=3, gradient="stl"), IWAE(k=3, gradient="dreg")]
)
def test_at_the_true_posterior_the_path_derivative_estimators_give_the_encoder_no_gradient(objective):
    x = torch.tensor([0.4, -1.2])  # p(z) = N(0, 1), p(x|z) = N(z, 1): the posterior is N(x / 2, 1 / 2)
    mu = (x / 2).unsqueeze(1).clone().requires_grad_()
    logvar = torch.full((2, 1), math.log(0.5), requires_grad=True)
    draw = gaussian_draw(
        mu, logvar, torch.randn(3, 2, 1, generator=torch.Generator().manual_seed(3)), x, torch.tensor(1.0)
    )
    for grad in grads(objective(draw, 0)["loss"].sum(), mu, logvar):
        torch.testing.assert_close(grad, torch.zeros_like(grad), atol=1e-5, rtol=0)
    assert any(g.abs().max() > 1e-2 for g in grads(IWAE(k=3)(draw, 0)["loss"].sum(), mu, logvar))  # the plain one moves


def test_the_new_objectives_refuse_bad_values_in_one_line():
    refusals = {
        r"^objective.kernel=cubic is unknown: choose one of imq, rbf": lambda: WAE(kernel="cubic"),
        r"^objective.type=iii is unknown: choose i": lambda: DIPVAE(type="iii"),
        r"^objective.gradient=dreg does not apply to objective=elbo: choose one of reparam, stl": lambda: ELBO(
            Constant(1.0), gradient="dreg"
        ),
        r"^objective.gradient=stl does not combine with objective.free_bits=1.0": lambda: ELBO(
            Constant(1.0), free_bits=1.0, gradient="stl"
        ),
        r"^objective.beta=2.0 is invalid: it must be from 0": lambda: CIWAE(beta=2.0),
        r"^objective.m=0 is invalid": lambda: PIWAE(m=0),
    }
    for message, build in refusals.items():
        with pytest.raises(ConfigError, match=message):
            build()

"""Each part of the zoo against an independent oracle: torch.distributions, autograd, a closed form, Monte Carlo."""

import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal, TransformedDistribution, Uniform
from torch.distributions.transforms import AffineTransform, SigmoidTransform

from vae.distributions import gaussian_kl
from vae.draw import Draw
from vae.likelihoods.logistic_mixture import LogisticMixture, discretized_logistic_mixture_log_prob
from vae.objectives.beta_tcvae import decompose_kl
from vae.objectives.iwae import iwae_bound
from vae.posteriors.iaf import IAFPosterior
from vae.priors.mog import MixtureOfGaussians
from vae.priors.vamp import VampPrior

torch.manual_seed(0)


def test_mixture_prior_density_matches_torch_distributions():
    prior = MixtureOfGaussians(latent_dim=3, components=4)
    with torch.no_grad():
        prior.logvar.normal_()
        prior.logits.normal_()
    oracle = MixtureSameFamily(
        Categorical(logits=prior.logits), Independent(Normal(prior.mu, (0.5 * prior.logvar).exp()), 1)
    )
    z = torch.randn(5, 6, 3)
    torch.testing.assert_close(prior.log_prob(z), oracle.log_prob(z).detach())
    assert prior.sample(7).shape == (7, 3)


def test_vamp_prior_is_the_uniform_mixture_of_the_posterior_at_the_pseudo_inputs():
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2 * 3))
    base = lambda x: tuple(encoder(x).chunk(2, dim=-1))  # noqa: E731
    prior = VampPrior(latent_dim=3, in_shape=(1, 3, 4), components=6)
    mu, logvar = base(prior.pseudo_inputs.clamp(0, 1))  # hard tanh to [0, 1]
    oracle = MixtureSameFamily(Categorical(logits=torch.zeros(6)), Independent(Normal(mu, (0.5 * logvar).exp()), 1))
    z = torch.randn(4, 5, 3)
    torch.testing.assert_close(prior.log_prob(z, base), oracle.log_prob(z))
    prior.log_prob(z, base).sum().backward()
    assert prior.pseudo_inputs.grad.abs().sum() > 0  # the pseudo-inputs learn
    assert prior.sample(9, base).shape == (9, 3)


def test_iaf_log_determinant_matches_the_autograd_jacobian_and_is_autoregressive():
    posterior = IAFPosterior(in_features=4, latent_dim=3, steps=2, hidden=16, context=5)
    for made in posterior.steps:  # move away from the near-identity initialisation
        torch.nn.init.normal_(made.out.weight, std=0.5)
    context = torch.randn(5)
    z = torch.randn(3)
    out, log_det = posterior.flow(z, context)
    jacobian = torch.autograd.functional.jacobian(lambda v: posterior.flow(v, context)[0], z)  # (3, 3)
    torch.testing.assert_close(log_det, torch.linalg.slogdet(jacobian)[1])
    one_step = lambda v: posterior.steps[0](v, context)[0]  # noqa: E731
    mask = torch.autograd.functional.jacobian(one_step, z).abs() > 0  # (out, in): output d sees inputs < d only
    assert not torch.triu(mask).any()


def test_iaf_log_q_is_the_density_of_its_draws():
    """log q(z|x) from the flow, checked by the change of variables on the base draw (Kingma et al. 2016, Eq. 7)."""
    posterior = IAFPosterior(in_features=4, latent_dim=2, steps=2, hidden=8, context=3)
    h = torch.randn(6, 4)
    torch.manual_seed(1)
    z, log_q, gaussian = posterior(h, k=3)
    mu, logvar = posterior.base(h)
    torch.manual_seed(1)
    z0 = mu + (0.5 * logvar).exp() * torch.randn(3, 6, 2)
    out, log_det = posterior.flow(z0, posterior.to_context(h).expand(3, -1, -1))
    torch.testing.assert_close(z, out)
    torch.testing.assert_close(log_q, Normal(mu, (0.5 * logvar).exp()).log_prob(z0).sum(-1) - log_det)
    assert gaussian is None  # no closed-form KL for a flow


@pytest.mark.parametrize("components", [1, 3])
def test_logistic_mixture_sums_to_one_over_the_256_values(components):
    likelihood = LogisticMixture(components)
    params = torch.randn(2, 3 * components * 3, 2, 2) * 2  # (B, 3 * M * C, H, W)
    values = torch.arange(256).float() / 255
    log_p = torch.stack([
        discretized_logistic_mixture_log_prob(v.expand(2, 3, 2, 2), *likelihood.split(params)) for v in values
    ])  # (256, B, C, H, W)
    torch.testing.assert_close(log_p.logsumexp(dim=0), torch.zeros(2, 3, 2, 2), atol=1e-4, rtol=0)


def test_logistic_mixture_mass_is_the_logistic_cdf_difference():
    means, log_scales, logits = torch.tensor([[0.1], [-0.5]]), torch.tensor([[-2.0], [-1.0]]), torch.tensor([[0.3], [-0.2]])
    weights = torch.softmax(logits[:, 0], dim=0)
    logistics = [  # the logistic distribution as torch.distributions builds it: a sigmoid-inverted uniform, shifted
        TransformedDistribution(Uniform(0.0, 1.0), [SigmoidTransform().inv, AffineTransform(m, s.exp())])
        for m, s in zip(means[:, 0], log_scales[:, 0])
    ]
    cdf = lambda v: sum(w * d.cdf(torch.tensor(v)) for w, d in zip(weights, logistics))  # noqa: E731
    for value in (0, 17, 128, 255):
        x = torch.tensor([value / 255])
        centre = value / 255 * 2 - 1
        upper = cdf(centre + 1 / 255) if value < 255 else torch.tensor(1.0)
        lower = cdf(centre - 1 / 255) if value > 0 else torch.tensor(0.0)
        expected = (upper - lower).log().view(1)
        torch.testing.assert_close(discretized_logistic_mixture_log_prob(x, logits, means, log_scales), expected)


def test_beta_tcvae_parts_sum_to_the_kl_and_vanish_where_they_should():
    mu, logvar = torch.randn(64, 4), torch.randn(64, 4) * 0.3
    z = mu + (0.5 * logvar).exp() * torch.randn(64, 4)
    parts = decompose_kl(z, mu, logvar, dataset_size=1000)
    log_q = Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(1)
    log_p = Normal(0.0, 1.0).log_prob(z).sum(1)
    torch.testing.assert_close(parts["mi"] + parts["tc"] + parts["dwkl"], log_q - log_p)  # the decomposition
    # every example with the same Gaussian posterior: q(z) is that Gaussian, so MI = TC = 0 and dwKL = KL
    same_mu, same_logvar = torch.tensor([[0.5, -1.0, 0.2]]).expand(500, 3), torch.tensor([[-0.4, 0.1, -1.0]]).expand(500, 3)
    z = same_mu + (0.5 * same_logvar).exp() * torch.randn(500, 3)
    parts = decompose_kl(z, same_mu, same_logvar, dataset_size=500)
    torch.testing.assert_close(parts["mi"], torch.zeros(500), atol=1e-4, rtol=0)
    torch.testing.assert_close(parts["tc"], torch.zeros(500), atol=1e-4, rtol=0)
    assert parts["dwkl"].mean() == pytest.approx(gaussian_kl(same_mu[0], same_logvar[0]).item(), abs=0.15)


def test_total_correlation_is_positive_for_correlated_codes():
    """Codes on a line (z1 = z2) are as correlated as can be: the estimated TC is large; independent ones near 0."""
    t = torch.randn(256, 1)
    mu, logvar = torch.cat([t, t], dim=1), torch.full((256, 2), -6.0)
    correlated = decompose_kl(mu, mu, logvar, 256)["tc"].mean()
    independent_mu = torch.randn(256, 2)
    independent = decompose_kl(independent_mu, independent_mu, logvar, 256)["tc"].mean()
    assert correlated > 2.0 and correlated > independent + 1.5


def test_iwae_bound_is_at_least_the_elbo_and_equals_it_for_one_draw():
    log_px_z, log_pz, log_q = torch.randn(5, 8), torch.randn(5, 8), torch.randn(5, 8)
    draw = Draw(log_px_z, log_pz, log_q, torch.randn(5, 8, 2))
    assert (iwae_bound(draw) >= draw.log_w.mean(0) - 1e-6).all()  # Jensen
    one = Draw(log_px_z[:1], log_pz[:1], log_q[:1], torch.randn(1, 8, 2))
    torch.testing.assert_close(iwae_bound(one), one.log_w[0])
    assert math.isclose(float(iwae_bound(draw)[0]), float(draw.log_w[:, 0].exp().mean().log()), rel_tol=1e-5)


@pytest.mark.parametrize("batch, dataset_size", [(2, 10), (5, 5), (64, 60_000)])
def test_stratified_weights_sum_to_one_and_give_the_own_example_one_over_n(batch, dataset_size):
    from vae.objectives.beta_tcvae import log_stratified_weights

    weights = log_stratified_weights(batch, dataset_size).exp()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(batch))
    torch.testing.assert_close(weights.diagonal(), torch.full((batch,), 1 / dataset_size))

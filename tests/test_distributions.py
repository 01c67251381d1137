"""The shared densities and the ELBO's pieces against independent oracles: torch.distributions and Monte Carlo."""

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Categorical, Independent, MixtureSameFamily, Normal, kl_divergence

from vae.distributions import (
    gaussian_kl,
    log_mean_exp,
    log_mixture_of_gaussians,
    log_normal,
    log_standard_normal,
    reparameterize,
)
from vae.likelihoods.bernoulli import bernoulli_log_likelihood
from vae.likelihoods.gaussian import gaussian_log_likelihood
from vae.objectives.elbo import kl_penalty

torch.manual_seed(0)


def test_gaussian_kl_matches_torch_distributions():
    mu, logvar = torch.randn(16, 5), torch.randn(16, 5)
    q, p = Normal(mu, torch.exp(0.5 * logvar)), Normal(torch.zeros(5), torch.ones(5))
    torch.testing.assert_close(gaussian_kl(mu, logvar), kl_divergence(q, p).sum(dim=1))


def test_gaussian_kl_matches_monte_carlo():
    mu, logvar = torch.tensor([[0.7, -1.2]]), torch.tensor([[-0.5, 0.3]])
    q, p = Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)
    z = q.sample((200_000,))  # (S, 1, 2)
    estimate = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean(0)
    torch.testing.assert_close(gaussian_kl(mu, logvar), estimate, atol=0.02, rtol=0)


def test_gaussian_kl_is_zero_at_the_prior():
    assert gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)).abs().max() == 0


def test_bernoulli_log_likelihood_matches_torch_distributions():
    logits, x = torch.randn(8, 1, 28, 28), torch.rand(8, 1, 28, 28).round()
    expected = Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(bernoulli_log_likelihood(logits, x), expected)


def test_bernoulli_log_likelihood_is_stable_for_huge_logits():
    logits = torch.tensor([[100.0, -100.0, 100.0]])
    right, wrong = torch.tensor([[1.0, 0.0, 1.0]]), torch.tensor([[0.0, 1.0, 1.0]])
    assert bernoulli_log_likelihood(logits, right).item() > -1e-6  # log 1, not nan
    torch.testing.assert_close(bernoulli_log_likelihood(logits, wrong), torch.tensor([-200.0]))


def test_bernoulli_log_likelihood_and_its_gradients_match_the_formula_for_grey_pixels_and_any_logit():
    """Against x * l - softplus(l), in float64: values and both gradients (autograd through the formula is
    the oracle), x broadcast to the logits."""
    logits = torch.randn(6, 1, 4, 5, dtype=torch.float64) * 4
    logits[0, 0, 0, :4] = torch.tensor([80.0, -80.0, 1e4, -1e4])
    logits.requires_grad_()
    x = torch.rand(1, 1, 4, 5, dtype=torch.float64, requires_grad=True)  # grey pixels, one image for all six
    ours = bernoulli_log_likelihood(logits, x)
    oracle = (x * logits - F.softplus(logits)).flatten(1).sum(1)
    torch.testing.assert_close(ours, oracle)
    weights = torch.randn(6, dtype=torch.float64)
    grads = torch.autograd.grad((ours * weights).sum(), (logits, x))
    expected = torch.autograd.grad((oracle * weights).sum(), (logits, x))
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want)
    assert torch.autograd.gradcheck(
        lambda logit: bernoulli_log_likelihood(logit, x.detach()), logits.detach().requires_grad_()
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the GPU path needs a GPU")
def test_bernoulli_log_likelihood_is_the_same_on_the_gpu():
    logits, x = torch.randn(8, 784) * 5, torch.rand(8, 784).round()
    torch.testing.assert_close(
        bernoulli_log_likelihood(logits.cuda(), x.cuda()).cpu(), bernoulli_log_likelihood(logits, x)
    )


def test_gaussian_log_likelihood_matches_torch_distributions():
    mean, logvar, x = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    expected = Normal(mean, torch.exp(0.5 * logvar)).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(gaussian_log_likelihood(mean, logvar, x), expected)


def test_reparameterize_draws_from_q_and_passes_gradients():
    mu = torch.tensor([[2.0, -1.0]], requires_grad=True)
    logvar = torch.tensor([[0.0, -2.0]], requires_grad=True)
    z = reparameterize(mu.expand(100_000, 2), logvar.expand(100_000, 2))
    torch.testing.assert_close(z.mean(0), mu[0].detach(), atol=0.02, rtol=0)
    torch.testing.assert_close(z.std(0), torch.exp(0.5 * logvar[0]).detach(), atol=0.02, rtol=0)
    z.sum().backward()
    assert mu.grad is not None and logvar.grad is not None and logvar.grad.abs().sum() > 0


def test_kl_penalty_weights_or_targets_the_kl():
    kl = torch.tensor([3.0, 10.0])
    torch.testing.assert_close(kl_penalty(kl, 0.5), torch.tensor([1.5, 5.0]))
    torch.testing.assert_close(kl_penalty(kl, 2.0, capacity=5.0), torch.tensor([4.0, 10.0]))


def test_log_densities_match_torch_distributions():
    z, mu, logvar = torch.randn(3, 4, 6), torch.randn(4, 6), torch.randn(4, 6)
    expected = Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(-1)
    torch.testing.assert_close(log_normal(z, mu, logvar), expected)
    torch.testing.assert_close(log_standard_normal(z), Normal(0.0, 1.0).log_prob(z).sum(-1))


def test_mixture_of_gaussians_matches_torch_distributions():
    z, mu, logvar, logits = torch.randn(3, 7, 4), torch.randn(5, 4), torch.randn(5, 4), torch.randn(5)
    oracle = MixtureSameFamily(Categorical(logits=logits), Independent(Normal(mu, (0.5 * logvar).exp()), 1))
    torch.testing.assert_close(log_mixture_of_gaussians(z, mu, logvar, logits), oracle.log_prob(z))


def test_log_mean_exp_is_the_log_of_the_mean():
    log_w = torch.randn(6, 3, dtype=torch.float64)
    torch.testing.assert_close(log_mean_exp(log_w), log_w.exp().mean(0).log())
    assert torch.isfinite(log_mean_exp(torch.tensor([[-1e4], [-1e4 - 1]])))  # no underflow to log 0

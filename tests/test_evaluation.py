"""The likelihood estimates against independent truths: torch.distributions, a closed-form ELBO, and the
exact log p(x) of probabilistic PCA (a VAE whose decoder is linear with Gaussian noise)."""

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from vae.distributions import gaussian_kl
from vae.evaluation import evaluate
from vae.families.vae import VAEModel
from vae.likelihoods.gaussian import Gaussian
from vae.metrics.latents import active_units, kl_per_dimension
from vae.metrics.likelihood import (
    CPU_CHUNK,
    MAX_CHUNK,
    bits_per_dim,
    images_that_fit,
    importance_weighted_log_likelihood,
)
from vae.posteriors.gaussian import GaussianPosterior
from vae.priors.standard_normal import StandardNormal
from vae.table import format_table

X_DIM, Z_DIM, NOISE_VAR = 5, 2, 0.3
BIG_CHUNKS = 2**17  # the model is tiny: few large chunks keep the test fast


class LinearGaussianDecoder(nn.Module):
    """p(x|z) = N(W z + b, sigma^2 I): probabilistic PCA, as decoder parameters (mean, logvar) of shape (B, 2, 1, X)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, noise_var: float):
        super().__init__()
        self.weight, self.bias, self.logvar = weight, bias, math.log(noise_var)

    def forward(self, z):
        mean = z @ self.weight.T + self.bias  # (B, X)
        return torch.stack([mean, torch.full_like(mean, self.logvar)], dim=1).unsqueeze(2)  # (B, 2, 1, X)


class LinearPosterior(GaussianPosterior):
    """q(z|x) = N(A (x - b) + shift, diag(var)): the exact posterior's mean, shifted, too wide and uncorrelated."""

    def __init__(self, matrix: torch.Tensor, bias: torch.Tensor, shift: torch.Tensor, logvar: torch.Tensor):
        super().__init__(in_features=X_DIM, latent_dim=Z_DIM)
        self.matrix, self.bias, self.shift, self.logvar = matrix, bias, shift, logvar

    def base(self, h):
        mu = (h - self.bias) @ self.matrix.T + self.shift  # (B, Z); h is the flattened x
        return mu, self.logvar.expand_as(mu)


def ppca(seed: int = 0):
    """A VAE that is probabilistic PCA with an imperfect encoder; x (8, 1, 1, X) drawn from it; its exact
    log p(x) (8,); its ELBO (8,) in closed form."""
    g = torch.Generator().manual_seed(seed)
    weight, bias = torch.randn(X_DIM, Z_DIM, generator=g), torch.randn(X_DIM, generator=g)
    # The exact posterior: N(M^-1 W^T (x - b), sigma^2 M^-1) with M = W^T W + sigma^2 I (Tipping & Bishop 1999).
    m_inv = torch.linalg.inv(weight.T @ weight + NOISE_VAR * torch.eye(Z_DIM))
    posterior_var = NOISE_VAR * m_inv.diagonal()
    posterior = LinearPosterior(m_inv @ weight.T, bias, torch.tensor([0.1, -0.07]), (posterior_var * 2).log())
    decoder = LinearGaussianDecoder(weight, bias, NOISE_VAR)
    system = VAEModel(nn.Flatten(), decoder, posterior, StandardNormal(Z_DIM), Gaussian())
    marginal = MultivariateNormal(bias, weight @ weight.T + NOISE_VAR * torch.eye(X_DIM))  # p(x), exactly
    x = marginal.sample((8,)).view(8, 1, 1, X_DIM)  # (B, C, H, W) with one row of X pixels
    exact = marginal.log_prob(x.flatten(1))  # (8,)
    # ELBO in closed form: E_q[log N(x; Wz + b, s^2 I)] - KL(q || p), z ~ N(mu, diag(v)).
    mu, logvar = posterior.base(x.flatten(1))
    residual = (x.flatten(1) - mu @ weight.T - bias).pow(2).sum(1)
    spread = (weight.pow(2) @ logvar.exp().T).T.sum(1)  # tr(W diag(v) W^T)
    expected_rec = -0.5 * X_DIM * math.log(2 * math.pi * NOISE_VAR) - 0.5 * (residual + spread) / NOISE_VAR
    q, prior = Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)
    elbo = expected_rec - kl_divergence(q, prior).sum(1)
    return system, x, exact, elbo


def test_kl_per_dimension_matches_torch_distributions_and_sums_to_the_kl():
    mu, logvar = torch.randn(7, 5), torch.randn(7, 5)
    per_dim = kl_per_dimension(mu, logvar)
    torch.testing.assert_close(per_dim, kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)))
    torch.testing.assert_close(per_dim.sum(1), gaussian_kl(mu, logvar))


def test_active_units_counts_dimensions_whose_mean_varies_across_x():
    scale = torch.tensor([1.0, 0.5, 0.05, 0.0])  # variances 1, 0.25, 0.0025, 0
    mu = torch.randn(5000, 4) * scale + torch.tensor([3.0, -1.0, 2.0, 0.5])  # offsets do not count
    assert active_units(mu) == 2


def test_bits_per_dim_is_nats_over_dims_ln2():
    torch.testing.assert_close(bits_per_dim(torch.tensor([-784 * math.log(2)]), 784), torch.tensor([1.0]))


def test_one_sample_estimate_is_the_elbo_in_expectation():
    torch.manual_seed(0)
    system, x, _, elbo = ppca()
    repeats = 20_000
    draws = importance_weighted_log_likelihood(system, x.repeat(repeats, 1, 1, 1), 1, BIG_CHUNKS).view(repeats, 8)
    stderr = draws.std(0) / math.sqrt(repeats)
    assert ((draws.mean(0) - elbo).abs() < 4 * stderr).all(), (draws.mean(0), elbo, stderr)


def test_estimate_rises_from_the_elbo_to_the_exact_log_likelihood():
    torch.manual_seed(0)
    system, x, exact, elbo = ppca()
    assert (exact - elbo).mean() > 0.4  # the encoder is imperfect enough for the bound to be loose
    many = x.repeat(50, 1, 1, 1)  # each estimate averaged over 50 independent runs of it
    estimates = {k: importance_weighted_log_likelihood(system, many, k, BIG_CHUNKS).mean() for k in (1, 10, 100, 1000)}
    for k, estimate in estimates.items():
        assert estimate > elbo.mean() - 0.1, (k, estimate, elbo.mean())  # never below the ELBO beyond noise
        assert estimate < exact.mean() + 0.01, (k, estimate, exact.mean())  # a lower bound, in expectation
    assert estimates[1] < estimates[10] < estimates[100] and estimates[100] > estimates[1] + 0.3
    per_example = importance_weighted_log_likelihood(system, x, k=5000, chunk_size=BIG_CHUNKS)
    torch.testing.assert_close(per_example, exact, atol=0.05, rtol=0)


def test_chunking_bounds_the_decoder_batch_without_changing_the_estimate():
    torch.manual_seed(0)
    system, x, exact, _ = ppca()
    seen = []
    system.decoder.register_forward_hook(lambda module, args, out: seen.append(len(args[0])))
    estimate = importance_weighted_log_likelihood(system, x, k=3001, chunk_size=40)  # 5 draws of 8 at a time
    assert max(seen) <= 40 and sum(seen) == 3001 * 8
    torch.testing.assert_close(estimate, exact, atol=0.05, rtol=0)


def test_gpu_chunks_fill_their_memory_budget_within_bounds():
    assert images_that_fit(bytes_per_image=10_000, budget=1e8) == 10_000
    assert images_that_fit(bytes_per_image=10_000, budget=1e6) == CPU_CHUNK  # never below the first chunk
    assert images_that_fit(bytes_per_image=100, budget=1e12) == MAX_CHUNK


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the GPU path needs a GPU")
def test_gpu_chunks_grow_after_the_first_without_changing_the_estimate():
    torch.manual_seed(0)
    system, x, exact, _ = ppca()
    seen = []
    system.decoder.register_forward_hook(lambda module, args, out: seen.append(len(args[0])))
    estimate = importance_weighted_log_likelihood(system.cuda(), x.cuda(), k=5000)
    assert seen[0] == CPU_CHUNK < seen[1] and sum(seen) == 5000 * len(x)  # 1,024 draws of 8, then the other 3,976
    torch.testing.assert_close(estimate.cpu(), exact, atol=0.05, rtol=0)


def test_evaluate_reports_every_metric_consistently():
    torch.manual_seed(0)
    system, x, exact, elbo = ppca()
    x = x.repeat(100, 1, 1, 1)  # 800 examples, so one-draw ELBO estimates average out
    metrics = evaluate(system, x.split(300), nll_samples=1000, chunk_size=BIG_CHUNKS)
    assert metrics["nll"] == pytest.approx(-exact.mean().item(), abs=0.05)
    assert metrics["elbo"] == pytest.approx(elbo.mean().item(), abs=0.3)
    assert metrics["elbo"] == pytest.approx(-(metrics["rec"] + metrics["kl"]))
    assert metrics["bpd"] == pytest.approx(metrics["nll"] / (X_DIM * math.log(2)))
    assert len(metrics["kl_per_dim"]) == Z_DIM and sum(metrics["kl_per_dim"]) == pytest.approx(metrics["kl"], abs=1e-3)
    assert metrics["active_units"] == 2 and metrics["nll_samples"] == 1000
    assert "kl_per_dim" in format_table(metrics)


@pytest.mark.slow
def test_training_ends_with_the_evaluation_and_eval_py_repeats_it_on_the_whole_test_split(tmp_path):
    import json

    from conftest import TINY, make_config, run_script
    from vae.training import train

    results = train(make_config(tmp_path, [*TINY, "nll_samples=20"]))  # 2 test batches of 32
    saved = json.loads((tmp_path / "results.json").read_text())
    for name in ("test/elbo", "test/rec", "test/kl", "test/nll", "test/bpd", "test/active_units"):
        assert saved[name] == pytest.approx(results[name])
    assert saved["test/nll"] < -saved["test/elbo"] + 5  # log p(x) >= ELBO, up to noise
    assert saved["test/bpd"] == pytest.approx(saved["test/nll"] / (784 * math.log(2)))
    assert len(saved["test/kl_per_dim"]) == 20 and saved["test/nll_samples"] == 20

    ckpt = tmp_path / "checkpoints" / "best.ckpt"
    # the same k (a smaller one would leave training's figure in results.json), on all 500 test digits
    result = run_script("eval.py", f"ckpt_path={ckpt}", "nll_samples=20", "chunk_size=640", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = dict(line.split(maxsplit=1) for line in result.stdout.splitlines() if line.startswith("test/"))
    evaluated = json.loads((tmp_path / "results.json").read_text())  # rewritten beside the checkpoint's run
    assert evaluated["test/nll_samples"] == 20 and evaluated["checkpoint"] == "checkpoints/best.ckpt"
    assert float(rows["test/nll"]) == pytest.approx(evaluated["test/nll"], abs=0.01)
    assert evaluated["test/nll"] == pytest.approx(saved["test/nll"], rel=0.05)  # all 500 test digits vs 64


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({}, "ckpt_path is required"),
        ({"ckpt_path": "nowhere.ckpt"}, "ckpt_path=nowhere.ckpt does not exist"),
        ({"ckpt_path": "x.ckpt", "nll_samples": -1}, "nll_samples=-1 is invalid"),
    ],
)
def test_eval_user_errors_name_the_bad_value(overrides, message):
    from omegaconf import OmegaConf

    from vae.errors import ConfigError
    from vae.evaluation import evaluate_checkpoint

    cfg = OmegaConf.merge(OmegaConf.load(Path(__file__).parents[1] / "conf" / "eval.yaml"), overrides)
    with pytest.raises(ConfigError, match=message):
        evaluate_checkpoint(cfg)


def test_nll_samples_zero_skips_log_px_and_says_so():
    system, x, _, _ = ppca()
    drawn = []
    system.decoder.register_forward_hook(lambda module, args, out: drawn.append(len(args[0])))
    metrics = evaluate(system, x.split(4), nll_samples=0)
    assert sum(drawn) == len(x)  # one draw per image for the ELBO, none for log p(x)
    assert "nll" not in metrics and "bpd" not in metrics and metrics["nll_samples"] == 0
    assert "not estimated" in metrics["nll_skipped"] and "elbo" in metrics


@pytest.mark.parametrize(
    "kept_k, new_k, winner",
    [(100, 1, "kept"), (100, 0, "kept"), (100, 1000, "new"), (100, 100, "new"), (0, 5, "new")],
)
def test_results_json_never_trades_a_larger_k_for_a_smaller_one(kept_k, new_k, winner):
    from vae.evaluation import merge_results

    def results(k: int, nll: float) -> dict:
        figures = {"test/nll": nll, "test/bpd": nll / 543} if k else {"test/nll_skipped": "skipped"}
        return {"test/elbo": -nll - 5, "test/nll_samples": k, **figures}

    kept, new = results(kept_k, 90.0), results(new_k, 95.0)
    merged = merge_results({**kept, "val/elbo": -96.0}, new)
    assert merged["val/elbo"] == -96.0 and merged["test/elbo"] == new["test/elbo"]  # other figures are the new ones
    expected = kept if winner == "kept" else new
    assert {k: v for k, v in merged.items() if k in ("test/nll", "test/bpd", "test/nll_samples", "test/nll_skipped")} == {
        k: v for k, v in expected.items() if k != "test/elbo"
    }


def test_progress_logs_done_rate_and_time_left_every_interval(caplog):
    import logging

    from vae.console import Progress

    now = [0.0]
    with caplog.at_level(logging.INFO, logger="vae.console"):
        with Progress("log p(x), k=1000", total=500, every=30.0, clock=lambda: now[0]) as progress:
            for _ in range(10):
                now[0] += 10.0  # 50 images every 10 s
                progress.advance(50)
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0] == "log p(x), k=1000: 150/500 images, 5 images/s, 0:01:10 left"
    assert len(lines) == 4 and lines[-1] == "log p(x), k=1000: 500 images in 100 s"  # at 30, 60, 90 s and the end

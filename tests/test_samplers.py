"""Samplers fitted after training (`sampler=gmm|two_stage`): EM against a known mixture, torch.distributions and
scikit-learn; the second-stage VAE against a known Gaussian; sample.py and eval.py end to end on tiny runs."""

import json
import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from conftest import CONF, TINY, make_config, run_script
from vae.build import build_system
from vae.errors import ConfigError
from vae.evaluation import evaluate_checkpoint
from vae.samplers.gmm import GMMSampler, Mixture, fit_gmm, gmm_log_prob, sample_gmm
from vae.samplers.two_stage import TwoStageSampler
from vae.sampling import draw_checkpoint
from vae.training import train

SAMPLERS = sorted(path.stem for path in (CONF / "sampler").glob("*.yaml"))


def two_blobs(n: int, seed: int = 0) -> torch.Tensor:
    """n points (n, 2): 30 % around (-4, 0), 70 % around (3, 2) with a tilted covariance."""
    g = torch.Generator().manual_seed(seed)
    first = torch.randn(int(0.3 * n), 2, generator=g) * 0.5 + torch.tensor([-4.0, 0.0])
    tilt = torch.tensor([[1.0, 0.0], [0.8, 0.6]])
    second = torch.randn(n - len(first), 2, generator=g) @ tilt.T + torch.tensor([3.0, 2.0])
    return torch.cat([first, second])


def test_em_recovers_a_known_mixture_and_its_log_likelihood_never_falls():
    mixture, history = fit_gmm(
        two_blobs(3000), components=2, iterations=200, generator=torch.Generator().manual_seed(0)
    )
    order = mixture.means[:, 0].argsort()
    torch.testing.assert_close(mixture.weights[order], torch.tensor([0.3, 0.7], dtype=torch.float64), atol=0.02, rtol=0)
    torch.testing.assert_close(
        mixture.means[order], torch.tensor([[-4.0, 0.0], [3.0, 2.0]], dtype=torch.float64), atol=0.1, rtol=0
    )
    torch.testing.assert_close(
        mixture.covariances[order[1]], torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=torch.float64), atol=0.1, rtol=0
    )
    steps = torch.tensor(history).diff()
    assert (steps >= -1e-9).all(), history


def test_em_from_a_poor_start_climbs_to_scikit_learns_optimum():
    from sklearn.mixture import GaussianMixture

    x = two_blobs(2000, seed=1)
    _, history = fit_gmm(x, components=3, iterations=300, generator=torch.Generator().manual_seed(5))
    theirs = GaussianMixture(3, covariance_type="full", n_init=5, random_state=0).fit(x.numpy()).score(x.numpy())
    assert len(history) > 5 and (torch.tensor(history).diff() >= -1e-9).all(), history
    assert history[-1] == pytest.approx(theirs, abs=0.02)  # mean log-likelihood per point


def random_mixture(k: int, d: int, seed: int) -> Mixture:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(k, d, d, generator=g, dtype=torch.float64)
    covariances = a @ a.transpose(1, 2) + 0.5 * torch.eye(d, dtype=torch.float64)
    weights = torch.rand(k, generator=g, dtype=torch.float64) + 0.1
    return Mixture(weights / weights.sum(), 3 * torch.randn(k, d, generator=g, dtype=torch.float64), covariances)


def test_gmm_log_density_matches_torch_distributions():
    mixture = random_mixture(4, 3, seed=0)
    oracle = MixtureSameFamily(Categorical(mixture.weights), MultivariateNormal(mixture.means, mixture.covariances))
    x = 4 * torch.randn(50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(gmm_log_prob(x, mixture), oracle.log_prob(x))


def test_gmm_draws_have_the_mixtures_mean_and_covariance():
    mixture = random_mixture(3, 2, seed=2)
    draws = sample_gmm(mixture, 200_000, torch.Generator().manual_seed(0))  # (n, 2)
    w = mixture.weights.view(-1, 1, 1)
    mean = (mixture.weights.unsqueeze(1) * mixture.means).sum(0)
    second = (w * (mixture.covariances + mixture.means.unsqueeze(2) * mixture.means.unsqueeze(1))).sum(0)
    torch.testing.assert_close(draws.mean(0), mean, atol=0.05, rtol=0)
    torch.testing.assert_close(draws.T.cov(), second - mean.outer(mean), atol=0.15, rtol=0.02)


def test_the_two_stage_sampler_reproduces_a_known_gaussian_and_is_repeatable():
    g = torch.Generator().manual_seed(0)
    mean, scale = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([[1.0, 0.0, 0.0], [0.6, 0.5, 0.0], [0.0, 0.3, 0.3]])
    codes = torch.randn(4000, 3, generator=g) @ scale.T + mean  # (N, 3), covariance scale scale^T
    sampler = TwoStageSampler(hidden=[64], steps=1000, batch_size=256, lr=3e-3, seed=0)
    sampler.fit_codes(codes)
    draws = sampler.draw(20000, torch.Generator().manual_seed(1))
    torch.testing.assert_close(draws.mean(0), mean, atol=0.15, rtol=0)
    torch.testing.assert_close(draws.T.cov(), scale @ scale.T, atol=0.1, rtol=0)
    assert sampler.model.log_gamma.exp() < 0.2  # gamma learned, falling from 1 (Dai & Wipf 2019, Sec. 4)
    twins = [TwoStageSampler(hidden=[8], steps=20, seed=4) for _ in range(2)]
    for twin in twins:
        twin.fit_codes(codes)
    torch.testing.assert_close(*[twin.draw(10, torch.Generator().manual_seed(1)) for twin in twins], rtol=0, atol=0)


def tiny(overrides: list[str]):
    torch.manual_seed(0)
    return build_system(make_config(Path("unused"), ["model.hidden=[32]", "latent=3", *overrides])).eval()


def test_a_fitted_sampler_is_repeatable_and_a_conditional_family_pools_its_classes():
    x, y = torch.rand(64, 1, 28, 28), torch.arange(64) % 10
    system = tiny(["family=cvae"])
    draws = [GMMSampler(components=2, seed=3).fit(system.model, [(x, y)]).sample(8, torch.Generator().manual_seed(0))
             for _ in range(2)]  # fmt: skip
    assert draws[0].shape == (8, 1, 28, 28) and torch.equal(draws[0], draws[1])


def test_a_family_with_discrete_codes_is_refused_in_one_line():
    system = tiny(["family=vqvae", "family.codes=2", "family.codebook_size=4"])
    for name in ("gmm", "two_stage"):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            node = compose("sample", overrides=[f"sampler={name}"]).sampler
        with pytest.raises(ConfigError, match=f"sampler={name} fits a density to continuous codes.*use sampler=prior"):
            instantiate(node).fit(system.model, [])


def command_config(name: str, ckpt: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(name, overrides=[f"ckpt_path={ckpt}", "device=cpu", *overrides])


def test_every_sampler_config_builds_and_prior_is_the_default():
    assert SAMPLERS == ["gmm", "prior", "two_stage"]
    for command in ("sample", "eval"):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            assert compose(command).sampler._target_ == "vae.samplers.PriorSampler"
            for name in SAMPLERS:
                assert instantiate(compose(command, overrides=[f"sampler={name}"]).sampler).name == name


@pytest.mark.slow
def test_sample_py_draws_from_a_gmm_fitted_to_the_training_codes(tmp_path):
    train(make_config(tmp_path / "run", [*TINY, "nll_samples=0"]))
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    draw_checkpoint(
        command_config("sample", ckpt, "sampler=gmm", "sampler.iterations=30", "n=16", f"out_dir={tmp_path / 'gmm'}")
    )
    draw_checkpoint(command_config("sample", ckpt, "n=16", f"out_dir={tmp_path / 'prior'}"))
    gmm, prior = ({path.name for path in (tmp_path / kind).glob("*.png")} for kind in ("gmm", "prior"))
    assert "samples_gmm.png" in gmm and "samples.png" not in gmm and "reconstructions.png" in gmm
    assert gmm - {"samples_gmm.png"} == prior - {"samples.png"}  # only the decoded draws are named for the sampler


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shapes")
    shapes = ["data=shapes", "data.scales=2", "data.orientations=4", "data.positions=4", "data.val_size=32",
              "data.test_size=64", "latent=4", "model.hidden=[64]", "nll_samples=0", f"paths.data_dir={tmp / 'data'}"]  # fmt: skip
    train(make_config(tmp / "run", [*TINY, *shapes]))
    return tmp / "run"


def test_eval_names_the_figures_of_a_fitted_sampler_beside_the_priors(shapes_run):
    ckpt = shapes_run / "checkpoints" / "best.ckpt"
    prior = evaluate_checkpoint(command_config("eval", ckpt, "nll_samples=0", "metrics=[fid,precision_recall]"))
    gmm = evaluate_checkpoint(
        command_config(
            "eval", ckpt, "nll_samples=0", "metrics=[fid,precision_recall]", "sampler=gmm", "sampler.components=3"
        )
    )
    assert {"test/fid", "test/precision", "test/recall"} <= set(prior) and "test/fid_gmm" not in prior
    assert {"test/fid_gmm", "test/precision_gmm", "test/recall_gmm", "test/fid_reference"} <= set(gmm)
    assert "test/fid" not in gmm and "test/precision" not in gmm
    assert gmm["test/fid_reference"] == prior["test/fid_reference"] and math.isfinite(gmm["test/fid_gmm"])
    assert all(0 <= gmm[f"test/{name}_gmm"] <= 1 for name in ("precision", "recall"))
    written = json.loads((shapes_run / "results.json").read_text())
    assert {"test/fid", "test/fid_gmm"} <= set(written)  # merged: each sampler's figures kept


def test_eval_refuses_a_sampler_no_metric_would_use(shapes_run):
    ckpt = shapes_run / "checkpoints" / "best.ckpt"
    with pytest.raises(ConfigError, match=r"sampler=gmm changes only the sample-quality metrics.*metrics=\[fid"):
        evaluate_checkpoint(command_config("eval", ckpt, "nll_samples=0", "sampler=gmm"))


@pytest.mark.slow
def test_sample_py_with_the_two_stage_sampler_on_the_command_line(tmp_path):
    train(make_config(tmp_path, [*TINY, "nll_samples=0"]))
    args = [f"ckpt_path={tmp_path / 'checkpoints' / 'best.ckpt'}", "n=9", "sampler=two_stage", "sampler.steps=50"]
    result = run_script("sample.py", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "samples" / "samples_two_stage.png").is_file()
    assert "sampler=two_stage: fitted to the training split's codes" in result.stdout + result.stderr

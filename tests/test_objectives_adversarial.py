"""Objectives with a second optimiser (FactorVAE, AAE) and the sliced-Wasserstein autoencoder.

The maths against closed forms: the density-ratio TC of a correlated Gaussian, the per-dimension shuffle,
sliced Wasserstein in one dimension; the two optimisers' gradients kept apart; short real trainings, and a
FactorVAE run that crashes and resumes to the uninterrupted run, both optimisers' states included.
"""

import itertools
import math
import re
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf
from scipy.optimize import linear_sum_assignment
from scipy.stats import wasserstein_distance
from test_steps_per_call import assert_same_training, last
from torch import nn

from conftest import TINY, make_config
from vae.draw import Draw
from vae.errors import user_error_message
from vae.objectives.discriminator import Discriminator, permute_dims
from vae.objectives.factor_vae import FactorVAE
from vae.objectives.swae import random_directions, sliced_wasserstein
from vae.steps_per_call import step_parts
from vae.system import System
from vae.training import train

RHO = 0.9
TRUE_TC = -0.5 * math.log(1 - RHO**2)  # KL(N(0, S) || N(0, 1) N(0, 1)) for unit variances and correlation rho


def correlated(n: int, generator: torch.Generator) -> torch.Tensor:
    """n draws (n, 2) of the Gaussian with unit variances and correlation RHO."""
    a, b = torch.randn(2, n, generator=generator)
    return torch.stack([a, RHO * a + math.sqrt(1 - RHO**2) * b], dim=1)


class BayesLogit(nn.Module):
    """The optimal discriminator's logit log q(z) - log q(z1) q(z2), in closed form (Kim & Mnih 2018, Sec. 3)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        joint = torch.distributions.MultivariateNormal(torch.zeros(2), torch.tensor([[1.0, RHO], [RHO, 1.0]]))
        return joint.log_prob(z) - torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(dim=1)


def draw_of(z: torch.Tensor) -> Draw:
    """A Draw whose codes are z (B, D) and whose densities are zero: what the objective's TC reads."""
    zeros = torch.zeros(1, len(z))
    return Draw(log_px_z=zeros, log_pz=zeros, log_qz_x=zeros, z=z.unsqueeze(0), kl=torch.zeros(len(z)))


def factor_vae(critic: nn.Module) -> FactorVAE:
    objective = FactorVAE(gamma=1.0)
    objective.discriminator = critic  # type: ignore[assignment]  # the Bayes classifier stands in for the network
    return objective


def test_the_optimal_discriminators_density_ratio_is_the_total_correlation():
    objective, generator = factor_vae(BayesLogit()), torch.Generator().manual_seed(0)
    terms = objective(draw_of(correlated(200_000, generator)), step=0)
    assert abs(terms["tc"].mean().item() - TRUE_TC) < 0.01, (terms["tc"].mean().item(), TRUE_TC)
    # and the discriminator's own loss is least at that logit: scaled or shifted, it does worse
    z = correlated(200_000, generator)
    best = objective(draw_of(z), 0)["parts_loss"].mean()
    for scale, shift in ((0.8, 0.0), (1.25, 0.0), (1.0, 0.3), (1.0, -0.3)):
        worse = factor_vae(nn.Sequential(BayesLogit(), Affine(scale, shift)))(draw_of(z), 0)["parts_loss"].mean()
        assert worse > best + 1e-3, (scale, shift, worse, best)


class Affine(nn.Module):
    def __init__(self, scale: float, shift: float):
        super().__init__()
        self.scale, self.shift = scale, shift

    def forward(self, logit: torch.Tensor) -> torch.Tensor:
        return self.scale * logit + self.shift


def test_a_discriminator_trained_on_the_objectives_own_loss_estimates_the_total_correlation():
    torch.manual_seed(0)
    critic = Discriminator(2, hidden=64, layers=2)
    objective, generator = factor_vae(critic), torch.Generator().manual_seed(1)
    optimizer = torch.optim.Adam(critic.parameters(), lr=3e-3)
    for _ in range(400):
        loss = objective(draw_of(correlated(512, generator)), step=0)["parts_loss"].mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        estimate = objective(draw_of(correlated(50_000, generator)), step=0)["tc"].mean().item()
    assert abs(estimate - TRUE_TC) < 0.15, (estimate, TRUE_TC)  # 0.83 nats; an untrained one says about 0


def test_shuffling_each_dimension_keeps_every_marginal_and_breaks_the_dependence():
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(50, 4, generator=generator)
    shuffled = permute_dims(z, generator)
    assert torch.equal(shuffled.sort(dim=0).values, z.sort(dim=0).values)  # each column: the same values
    # two copies of one column: the shuffled pairs (i, j) are uniform over all 4 x 4, not only i == j
    index = torch.arange(4.0).unsqueeze(1).expand(4, 2)
    counts = torch.zeros(4, 4)
    for _ in range(8000):
        pairs = permute_dims(index, generator).long()
        counts[pairs[:, 0], pairs[:, 1]] += 1
    assert torch.allclose(counts / counts.sum(), torch.full((4, 4), 1 / 16), atol=0.01), counts


def test_sliced_wasserstein_in_one_dimension_is_the_sorted_difference_and_optimal_transport():
    generator = torch.Generator().manual_seed(0)
    a, b = (
        torch.randn(7, 1, generator=generator, dtype=torch.float64),
        torch.rand(7, 1, generator=generator, dtype=torch.float64),
    )
    one = torch.ones(1, 1, dtype=torch.float64)
    sorted_difference = (a.sort(dim=0).values - b.sort(dim=0).values).pow(2).mean()
    assert torch.allclose(sliced_wasserstein(a, b, one), sorted_difference)
    assert torch.allclose(sliced_wasserstein(a, b, -one), sorted_difference)  # either way along the line
    brute = min((a[:, 0] - b[list(order), 0]).pow(2).mean() for order in itertools.permutations(range(7)))
    assert torch.allclose(sliced_wasserstein(a, b, one), brute)  # every matching of 7 with 7
    cost = (a - b.T).pow(2).numpy()  # (N, N)
    rows, cols = linear_sum_assignment(cost)
    assert math.isclose(sliced_wasserstein(a, b, one).item(), cost[rows, cols].mean(), rel_tol=1e-12)
    w1 = wasserstein_distance(a[:, 0].numpy(), b[:, 0].numpy())
    assert math.isclose(sliced_wasserstein(a, b, one, p=1).item(), w1, rel_tol=1e-12)


def test_sliced_wasserstein_averages_over_directions_and_they_are_unit_vectors():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(20, 2, generator=generator), torch.randn(20, 2, generator=generator) + 1
    axes = torch.eye(2)
    per_axis = [sliced_wasserstein(a[:, [d]], b[:, [d]], torch.ones(1, 1)) for d in range(2)]
    assert torch.allclose(sliced_wasserstein(a, b, axes), torch.stack(per_axis).mean())
    assert sliced_wasserstein(a, a, random_directions(9, 2, a.device)) == 0
    assert torch.allclose(random_directions(9, 5, a.device, generator).norm(dim=1), torch.ones(9))


def system(tmp_path, objective: str, *overrides: str) -> System:
    cfg = make_config(tmp_path, [*TINY, f"objective={objective}", "model.hidden=[16]", "latent=3", *overrides])
    return System(OmegaConf.to_container(cfg, resolve=True))


@pytest.mark.parametrize("objective", ["factor_vae", "aae"])
def test_the_discriminators_gradients_and_the_models_stay_apart(tmp_path, objective):
    torch.manual_seed(0)
    vae = system(tmp_path, objective)
    model, parts = list(vae.model.parameters()), list(vae.objective_parts.parameters())
    x = torch.rand(8, 1, 28, 28)
    terms = vae.objective(vae.model.draw(x), step=0)
    loss, parts_loss = terms["loss"].mean(), terms["parts_loss"].mean()
    wanted = torch.autograd.grad(parts_loss, parts, retain_graph=True)
    assert all(
        g is None for g in torch.autograd.grad(parts_loss, model, retain_graph=True, allow_unused=True)
    )  # codes detached
    loss.backward()  # the model's loss reaches the discriminator too (through D(z))
    model_grads = [p.grad.clone() for p in model]
    assert any(p.grad.abs().sum() > 0 for p in parts)
    optimizer = vae.objective.optimizer(parts)
    before = [p.detach().clone() for p in parts]
    fake = SimpleNamespace(
        optimizers=lambda: [None, SimpleNamespace(optimizer=optimizer)], manual_backward=torch.autograd.backward
    )
    step_parts(fake, parts_loss)
    for p, g in zip(parts, wanted):  # the parts' step followed their own loss alone
        assert torch.equal(p.grad, g)
    assert all(torch.equal(p.grad, g) for p, g in zip(model, model_grads))  # and added nothing to the model's
    assert any(not torch.equal(p, b) for p, b in zip(parts, before))


@pytest.mark.parametrize(  # the fast tier trains the one with a second optimiser; the full suite each
    "objective", ["factor_vae", pytest.param("swae", marks=pytest.mark.slow), pytest.param("aae", marks=pytest.mark.slow)]
)
def test_a_few_steps_train_each_objective_on_the_default_data(tmp_path, objective):
    results = train(make_config(tmp_path, [*TINY, f"objective={objective}"]))
    assert math.isfinite(results["test/elbo"]) and math.isfinite(results["test/loss"])
    checkpoint = last(tmp_path)
    assert checkpoint["global_step"] == 3  # model steps: the discriminator's own steps are not counted
    has_parts = objective != "swae"
    assert len(checkpoint["optimizer_states"]) == 1 + has_parts
    assert any(name.startswith("objective_parts.") for name in checkpoint["state_dict"]) == has_parts
    if has_parts:  # the discriminator's Adam took a step per model step
        assert all(s["step"] == 3 for s in checkpoint["optimizer_states"][1]["state"].values())


RUN = [*TINY, "objective=factor_vae", "objective.discriminator_hidden=16", "trainer.max_epochs=2",
       "trainer.limit_train_batches=4", "callbacks.steps.every_n_train_steps=3", "data.binarize=false", "seed=3"]  # fmt: skip


class Crash(L.Callback):
    """Stands for a killed process: fails the run after step 3's checkpoint."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step > 3:
            raise RuntimeError("crash")


@pytest.mark.slow
@pytest.mark.parametrize("steps_per_call", ["1", "auto"])
def test_factor_vae_resumed_after_a_crash_ends_as_the_uninterrupted_run(tmp_path, steps_per_call):
    run = [*RUN, f"steps_per_call={steps_per_call}"]
    train(make_config(tmp_path / "whole", run))
    crashed = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="crash"):
        train(make_config(crashed, [*run, "+callbacks.crash._target_=test_objectives_adversarial.Crash"]))
    assert last(crashed)["global_step"] == 3
    (crashed / ".hydra" / "overrides.yaml").write_text("[]\n")
    train(make_config(crashed, [*run, f"resume={crashed}"]))
    assert len(last(crashed)["optimizer_states"]) == 2
    assert_same_training(crashed, tmp_path / "whole")  # weights, both optimisers' states and the logged rows


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            ["objective=factor_vae", "+trainer.accumulate_grad_batches=2"],
            "^objective=factor_vae trains its own parts .* cannot accumulate",
        ),
        (["objective=aae", "trainer.precision=16-mixed"], "^objective=aae trains its own parts .*loss scaler"),
        (["objective=swae", "prior=mog"], "^objective=swae needs prior=standard_normal: it pulls the codes towards prior draws"),
        (["objective=aae", "family=hvae", "model=burda"], "^objective=aae does not fit family=hvae"),
        (["objective=swae", "beta=linear"], "does not apply to objective=swae"),
        (["objective=factor_vae", "family=vqvae"], "^family=vqvae takes objective=elbo"),
        (
            ["objective=factor_vae", "objective.discriminator_betas=[0.5]"],
            "^objective.discriminator_betas=\\[0.5\\] is invalid",
        ),
    ],
)
def test_what_an_objective_cannot_go_with_is_refused_in_one_line(tmp_path, overrides, message):
    with pytest.raises(Exception) as caught:  # a constructor's error arrives wrapped by Hydra's instantiate
        train(make_config(tmp_path, [*TINY, *overrides]))
    line = user_error_message(caught.value)
    assert line is not None and re.search(message, line), line
    assert not (tmp_path / "checkpoints").exists()  # refused before training

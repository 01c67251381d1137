"""posterior=deterministic with objective=ae and objective=rae (Ghosh et al. 2020): ae's loss is -log p(x|z) at the
encoder's code, rae's L2 term is the explicit sum over the decoder's weights, its gradient penalty matches finite
differences; what needs log q is refused or marked not applicable; each trains for a few steps."""

import copy
import math
import re

import pytest
import torch
from omegaconf import OmegaConf

from conftest import TINY, make_config
from vae.draw import Draw
from vae.errors import find_config_error
from vae.evaluation import evaluate
from vae.likelihoods.bernoulli import bernoulli_log_likelihood
from vae.objectives.rae import gradient_penalty
from vae.system import VAE
from vae.training import train


def system(tmp_path, *overrides: str) -> VAE:
    torch.manual_seed(0)
    args = ["posterior=deterministic", "latent=3", "model.hidden=[16]", *overrides]
    return VAE(OmegaConf.to_container(make_config(tmp_path, args), resolve=True))


def x_batch() -> torch.Tensor:
    return torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def log_px_at(model, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """log p(x|z) (B,) by hand: the decoder and the likelihood at the codes z (B, D)."""
    return model.likelihood.log_prob(model.decoder(z), x)


def test_the_ae_loss_is_the_negative_log_likelihood_of_x_given_the_encoder_mean(tmp_path):
    model, objective = (s := system(tmp_path, "objective=ae")).model, s.objective
    x = x_batch()
    terms = objective(model.draw(x), step=0)
    mean = model.posterior.head(model.encoder(x))  # the code, by hand: no noise
    torch.testing.assert_close(terms["loss"], -log_px_at(model, x, mean))
    torch.testing.assert_close(model.encode(x), mean)
    assert torch.equal(model.draw(x).z, model.draw(x).z)  # deterministic


def test_the_rae_l2_term_is_the_sum_of_the_decoders_squared_weights(tmp_path):
    model, objective = (
        (s := system(tmp_path, "objective=rae", "objective.beta=0.5", "objective.regulariser_weight=0.01")).model,
        s.objective,
    )
    x = x_batch()
    terms = objective(model.draw(x), step=0)
    explicit = sum(float((p.double() ** 2).sum()) for _, p in model.decoder.named_parameters())
    assert float(terms["regulariser"]) == pytest.approx(explicit, rel=1e-5)
    z = model.encode(x)
    expected = -log_px_at(model, x, z) + 0.5 * z.pow(2).sum(-1) / 2 + 0.01 * explicit
    torch.testing.assert_close(terms["loss"], expected)


def test_the_rae_gradient_penalty_matches_finite_differences_and_trains_the_decoder(tmp_path):
    model, objective = (s := system(tmp_path, "objective=rae", "objective.regulariser=gp")).model, s.objective
    x = x_batch()
    draw = model.draw(x)
    terms = objective(draw, step=0)
    torch.testing.assert_close(terms["regulariser"], gradient_penalty(draw))
    # the oracle, in float64: central differences of log p(x|z) in each coordinate of the code, (B, D)
    decoder = copy.deepcopy(model.decoder).double()
    z, xd, h = model.encode(x).double().detach(), x.double(), 1e-5
    log_px = lambda z: bernoulli_log_likelihood(decoder(z), xd)  # noqa: E731  (B, D) -> (B,), likelihood=bernoulli
    fd = torch.stack([(log_px(z + h * e) - log_px(z - h * e)) / (2 * h) for e in torch.eye(3, dtype=z.dtype)], dim=-1)
    torch.testing.assert_close(terms["regulariser"].double(), fd.pow(2).sum(-1), rtol=1e-4, atol=1e-6)
    z64 = z.clone()[None].requires_grad_()  # (1, B, D): the same penalty in float64 is the finite differences' to 1e-7
    exact = gradient_penalty(Draw(log_px(z64[0])[None], z64.new_zeros(1, 6), z64.new_zeros(1, 6), z64))
    torch.testing.assert_close(exact, fd.pow(2).sum(-1), rtol=1e-7, atol=1e-9)
    grads = torch.autograd.grad(terms["regulariser"].sum(), list(model.decoder.parameters()), allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)  # create_graph: the penalty reaches the decoder
    with torch.no_grad():  # validation: no graph, so the penalty is left out rather than failing
        assert "regulariser" not in objective(model.draw(x), step=0)


def test_what_needs_log_q_is_marked_not_applicable_and_not_estimated(tmp_path):
    model = system(tmp_path, "objective=ae").model
    assert set(model.not_applicable) == {"elbo", "kl", "nll", "bpd"}
    metrics = evaluate(model.eval(), [x_batch()], nll_samples=8)
    assert {"elbo", "kl", "nll", "bpd"}.isdisjoint(metrics) and math.isfinite(metrics["rec"])
    assert "nll: the encoder is deterministic" in metrics["not_applicable"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["objective=elbo"], r"^objective=elbo needs log q\(z\|x\), which the deterministic encoder \(posterior=deterministic\) does not have: use objective=ae or objective=rae$"),
        (["objective=iwae"], r"^objective=iwae needs log q"),
        (["objective=ae", "prior=vamp"], r"^posterior=deterministic takes prior=standard_normal, not prior=vamp: "),
        (["objective=ae", "posterior=gaussian"], r"^objective=ae trains a deterministic encoder: use posterior=deterministic"),
        (["objective=rae", "objective.regulariser=l1"], r"^objective.regulariser=l1 is unknown: choose one of l2, gp, none$"),
        (["objective=rae", "beta=linear"], r"does not apply to objective=rae: "),
        (["objective=ae", "family=hvae", "posterior=gaussian"], r"^objective=ae does not fit family=hvae: "),
        (["objective=ae", "family=hvae"], r"^family=hvae takes posterior=gaussian, iaf, planar or radial, not posterior=deterministic: "),
    ],
)  # fmt: skip
def test_what_does_not_fit_a_deterministic_encoder_stops_with_one_line(tmp_path, overrides, message):
    with pytest.raises(Exception) as caught:  # Hydra's instantiate wraps what a constructor refuses
        system(tmp_path, *overrides)
    assert re.search(message, str(find_config_error(caught.value))), caught.value


@pytest.mark.slow
@pytest.mark.parametrize(
    "objective", [["objective=ae"], ["objective=rae"], ["objective=rae", "objective.regulariser=gp"]]
)
def test_a_deterministic_autoencoder_trains_and_reports_what_applies(tmp_path, objective):
    results = train(make_config(tmp_path, [*TINY, "posterior=deterministic", *objective, "nll_samples=4"]))
    assert math.isfinite(results["test/rec"]) and math.isfinite(results["val/elbo"])
    assert {"test/nll", "test/bpd", "test/elbo", "test/kl"}.isdisjoint(results)

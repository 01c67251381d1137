"""The Ladder VAE (family=ladder, Sønderby et al. 2016) against independent oracles, then short real trainings.

The merge against the closed-form product of two Gaussians and against a product normalised on a grid;
a tiny ladder's densities and bound against a plain re-computation from its parameters with
torch.distributions; gradients reach every parameter; the shapes of K draws and of ancestral draws;
free bits against a hand-computed value; the log-variance floor against its closed form; then a few training steps
through the real config (ELBO with warm-up, IWAE, free bits, batch norm on and off).
"""

import csv
import json
import math
import re

import pytest
import torch
from omegaconf import OmegaConf
from torch.distributions import Bernoulli, Normal

from conftest import TINY, WITH_PICTURES, make_config
from vae.draw import Draw
from vae.errors import ConfigError, user_error_message
from vae.evaluation import evaluate
from vae.families.ladder import merge_gaussians, soft_floor
from vae.objectives.elbo import ELBO
from vae.objectives.free_bits import free_bits_kl
from vae.objectives.iwae import IWAE
from vae.schedules import Constant
from vae.system import VAE
from vae.training import train

SIZES = [5, 4, 3]
SMALL = ["family=ladder", "model.hidden=[16]", f"family.latents={SIZES}", "family.widths=[8,6]"]


def ladder(tmp_path, *overrides: str):
    cfg = make_config(tmp_path, [*SMALL, *overrides])
    return VAE(OmegaConf.to_container(cfg, resolve=True)).model


def binary_digits(n: int = 6) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.bernoulli(torch.rand(n, 1, 28, 28))


# --- the precision-weighted merge ---


def test_merge_is_the_normalised_product_of_the_two_gaussians():
    """N(z; a) N(z; b) = N(mu_a; mu_b, s_a^2 + s_b^2) N(z; mu_q, s_q^2) for every z: the log ratio is that constant."""
    torch.manual_seed(0)
    mu_hat, mu_p, logvar_hat, logvar_p = torch.randn(4, 7) * 2
    mu_q, logvar_q = merge_gaussians(mu_hat, logvar_hat, mu_p, logvar_p)
    sd = lambda logvar: (0.5 * logvar).exp()  # noqa: E731
    z = torch.randn(50, 7) * 3
    product = Normal(mu_hat, sd(logvar_hat)).log_prob(z) + Normal(mu_p, sd(logvar_p)).log_prob(z)  # (50, 7)
    evidence = Normal(mu_p, (logvar_hat.exp() + logvar_p.exp()).sqrt()).log_prob(mu_hat)  # (7,)
    torch.testing.assert_close(product - Normal(mu_q, sd(logvar_q)).log_prob(z), evidence.expand(50, 7), atol=1e-4, rtol=1e-4)


def test_merge_matches_the_product_density_normalised_on_a_grid():
    grid = torch.linspace(-12, 12, 200001, dtype=torch.float64)
    for mu_hat, var_hat, mu_p, var_p in [(1.0, 0.5, -2.0, 2.0), (0.0, 1e-2, 3.0, 1.0), (-4.0, 9.0, 4.0, 9.0)]:
        density = (Normal(mu_hat, var_hat**0.5).log_prob(grid) + Normal(mu_p, var_p**0.5).log_prob(grid)).exp()
        density = density / torch.trapezoid(density, grid)
        mean = torch.trapezoid(grid * density, grid)
        var = torch.trapezoid((grid - mean) ** 2 * density, grid)
        t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
        mu_q, logvar_q = merge_gaussians(t(mu_hat), t(math.log(var_hat)), t(mu_p), t(math.log(var_p)))
        assert float(mu_q) == pytest.approx(float(mean), abs=1e-6)
        assert float(logvar_q.exp()) == pytest.approx(float(var), rel=1e-5)


def test_merge_stays_finite_where_one_side_is_certain():
    """Precisions of e^60 and e^-60 overflow no float32: the certain side wins, the other drops out."""
    mu_q, logvar_q = merge_gaussians(torch.tensor([1.0]), torch.tensor([-60.0]), torch.tensor([5.0]), torch.tensor([60.0]))
    assert float(mu_q) == pytest.approx(1.0) and float(logvar_q) == pytest.approx(-60.0)


# --- the log-variance floor ---


def test_soft_floor_is_floor_plus_softplus_and_nearly_the_identity_above_it():
    x = torch.linspace(-80, 40, 1201, dtype=torch.float64, requires_grad=True)
    floored = soft_floor(x, -10.0)
    torch.testing.assert_close(floored, -10.0 + torch.log1p(torch.exp(x + 10.0)))  # the closed form, in float64
    assert bool((floored >= -10.0).all())
    above = x.detach() > 2.0  # 12 nats above the floor: within e^-12 of the identity
    torch.testing.assert_close(floored.detach()[above], x.detach()[above], atol=1e-5, rtol=0)
    (grad,) = torch.autograd.grad(floored.sum(), x)
    torch.testing.assert_close(grad, torch.sigmoid(x.detach() + 10.0))  # d/dx softplus = sigmoid
    assert soft_floor(x, None) is x


def test_a_ladder_with_a_floor_keeps_every_log_variance_above_it_where_its_heads_push_far_below(tmp_path):
    """What a 300-epoch run met (a prior log-variance of -67, then a NaN): with the floor, the draw stays finite."""
    model = ladder(tmp_path, "family.logvar_floor=-3.0").eval()
    with torch.no_grad():
        for linear in [model.posterior.head, *(h.linear for h in model.up_heads), *(layer.head.linear for layer in model.down)]:
            linear.bias[linear.out_features // 2 :] = -500.0  # the log-variance half of each head's output
        evidence = model.bottom_up(binary_digits())
        priors = [layer(torch.randn(3, upper)) for layer, upper in zip(model.down, SIZES[1:])]  # p(z_l|z_(l+1))
        draw = model.draw(binary_digits(), k=2)
    for _, logvar in [*evidence, *priors]:
        assert bool((logvar >= -3.0).all())
    assert bool(torch.isfinite(draw.log_w).all())


# --- a tiny ladder against a plain re-computation ---


def test_tiny_ladder_densities_and_bounds_equal_a_plain_computation(tmp_path):
    """log p(x|z1), log p(z), log q(z|x), the ELBO and the IWAE bound, recomputed from the parameters alone."""
    model = ladder(tmp_path, "family.batch_norm=false")
    x = binary_digits()
    torch.manual_seed(1)
    draw = model.draw(x, k=4)
    z1, z2, z3 = draw.z.split(SIZES, dim=-1)  # (4, 6, D_l)

    lin = lambda h, m: h @ m.weight.T + m.bias  # noqa: E731
    block = lambda h, b: torch.relu(lin(torch.relu(lin(h, b.net[0])), b.net[2]))  # Linear-ReLU, twice  # noqa: E731
    gauss = lambda h, m: lin(h, m).chunk(2, dim=-1)  # noqa: E731
    sd = lambda logvar: (0.5 * logvar).exp()  # noqa: E731
    d1 = torch.relu(lin(x.flatten(1), model.encoder.net[1][0]))
    d2 = block(d1, model.up[0])
    d3 = block(d2, model.up[1])
    (m1, v1), (m2, v2), (m3, v3) = gauss(d1, model.posterior.head), gauss(d2, model.up_heads[0].linear), gauss(d3, model.up_heads[1].linear)
    p2_mu, p2_lv = gauss(block(z3, model.down[1].block), model.down[1].head.linear)  # p(z2|z3)
    p1_mu, p1_lv = gauss(block(z2, model.down[0].block), model.down[0].head.linear)  # p(z1|z2)

    def product(mu_a, lv_a, mu_b, lv_b):  # the paper's Eq. 18-19 with precisions, as written there
        precision = lv_a.exp().reciprocal() + lv_b.exp().reciprocal()
        return (mu_a / lv_a.exp() + mu_b / lv_b.exp()) / precision, precision.reciprocal().sqrt()

    log_q = (Normal(m3, sd(v3)).log_prob(z3).sum(-1) + Normal(*product(m2, v2, p2_mu, p2_lv)).log_prob(z2).sum(-1)
             + Normal(*product(m1, v1, p1_mu, p1_lv)).log_prob(z1).sum(-1))  # fmt: skip
    log_p_layers = [Normal(p1_mu, sd(p1_lv)).log_prob(z1).sum(-1), Normal(p2_mu, sd(p2_lv)).log_prob(z2).sum(-1),
                    Normal(0.0, 1.0).log_prob(z3).sum(-1)]  # fmt: skip
    logits = lin(torch.relu(lin(z1, model.decoder.net[0][0])), model.decoder.net[1])  # (4, 6, 784)
    log_px_z = Bernoulli(logits=logits).log_prob(x.flatten(1)).sum(-1)

    torch.testing.assert_close(draw.log_px_z, log_px_z, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(draw.log_pz, sum(log_p_layers), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(draw.log_qz_x, log_q, rtol=1e-4, atol=1e-4)
    log_w = log_px_z + sum(log_p_layers) - log_q
    torch.testing.assert_close(ELBO(Constant(), k=4)(draw, 0)["elbo"], log_w.mean(0), rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(IWAE(k=4)(draw, 0)["iwae"], torch.logsumexp(log_w, 0) - math.log(4), rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(draw.logged["kl_layer3"], (Normal(m3, sd(v3)).log_prob(z3).sum(-1) - log_p_layers[2]).mean(0))
    torch.testing.assert_close(sum(draw.kl_layers), draw.kl_estimate)


def test_draws_follow_the_top_down_posterior(tmp_path):
    """z3 ~ N(mu_hat_3, s_hat_3^2), and z2 given z3 standardises to N(0, 1) under the merged posterior."""
    model = ladder(tmp_path, "family.batch_norm=false")
    x = binary_digits(2)
    with torch.no_grad():
        draw = model.draw(x, k=20000)
        evidence = model.bottom_up(x)
        _, z2, z3 = draw.z.split(SIZES, dim=-1)
        mu_q, logvar_q = merge_gaussians(*evidence[1], *model.down[1](z3))
    for residual in ((z3 - evidence[2][0]) / (0.5 * evidence[2][1]).exp(), (z2 - mu_q) / (0.5 * logvar_q).exp()):
        assert residual.mean(0).abs().max() < 0.05 and (residual.std(0) - 1).abs().max() < 0.05


@pytest.mark.parametrize("batch_norm", [True, False])
def test_every_parameter_receives_gradient(tmp_path, batch_norm):
    model = ladder(tmp_path, f"family.batch_norm={str(batch_norm).lower()}")
    draw = model.draw(binary_digits(8), k=2)
    ELBO(Constant(), k=2)(draw, 0)["loss"].mean().backward()
    silent = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not silent
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules()) == batch_norm


def test_shapes_of_k_draws_codes_and_ancestral_draws(tmp_path):
    model = ladder(tmp_path).eval()
    x = binary_digits()
    draw = model.draw(x, k=5)
    assert draw.z.shape == (5, 6, 12) and draw.log_w.shape == (5, 6) and len(draw.kl_layers) == 3
    assert set(draw.logged) == {"kl_layer1", "kl_layer2", "kl_layer3"} and draw.logged["kl_layer1"].shape == (6,)
    assert model.encode(x).shape == (6, 12) and model.sample(4).shape == (4, 1, 28, 28)
    generator = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    top = torch.randn(4, 3)
    codes = model.redraw_below(torch.cat([torch.zeros(4, 9), top], dim=1), 2, generator())
    assert codes.shape == (4, 12) and torch.equal(codes[:, 9:], top)
    fixed = model.redraw_below(codes, 1, generator())  # z2 and z3 fixed: only z1 drawn anew
    assert torch.equal(fixed[:, 5:], codes[:, 5:]) and not torch.equal(fixed[:, :5], codes[:, :5])
    torch.testing.assert_close(model.bottom_up(x[:2])[0][0], model.bottom_up(x)[0][0][:2])  # eval: no batch statistics


def test_evaluation_reports_each_layer(tmp_path):
    model = ladder(tmp_path).eval()
    metrics = evaluate(model, [binary_digits(16)], nll_samples=64)
    assert metrics["nll"] < -metrics["elbo"] + 1.0  # log p(x) from 64 draws >= the one-draw ELBO, up to noise
    assert sum(metrics[f"kl_layer{i}"] for i in (1, 2, 3)) == pytest.approx(metrics["kl"], rel=1e-4)
    assert {"active_units_layer1", "active_units_layer2", "active_units_layer3"} <= set(metrics)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["family.widths=[8]"], r"^family.widths=\[8\] does not fit family.latents=\[5, 4, 3\]: give one deterministic width"),
        (["family.latents=[5]", "family.widths=[]"], r"^family.latents=\[5\] is invalid: give two or more layer sizes"),
        (["posterior=iaf"], r"^family=ladder takes posterior=gaussian, not posterior=iaf"),
        (["prior=vamp", "prior.components=2"], r"^prior=vamp does not fit family=ladder: .* not to the top layer"),
        (["objective=beta_tcvae"], r"^objective=beta_tcvae does not fit family=ladder"),
        (["family.logvar_floor=low"], r"^family.logvar_floor=low is invalid: it must be a finite number"),
    ],
)
def test_ladder_refuses_what_cannot_work_in_one_line(tmp_path, overrides, message):
    with pytest.raises(Exception) as caught:  # a constructor's error arrives wrapped by Hydra's instantiate
        ladder(tmp_path, *overrides)
    assert re.match(message, user_error_message(caught.value))


# --- free bits (Kingma et al. 2016) ---


def test_free_bits_floors_each_layer_at_its_batch_mean():
    """Layer 1 (mean KL 2 > 1.5) counts in full; layer 2 (mean 0.75 <= 1.5) counts 1.5 and gets no gradient."""
    kl1 = torch.tensor([1.0, 3.0], requires_grad=True)
    kl2 = torch.tensor([0.5, 1.0], requires_grad=True)
    kl = free_bits_kl([kl1, kl2], 1.5)
    torch.testing.assert_close(kl, torch.tensor([2.5, 4.5]))  # by hand: (1 + 1.5, 3 + 1.5); mean 3.5 = 2 + max(1.5, 0.75)
    kl.mean().backward()
    torch.testing.assert_close(kl1.grad, torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(kl2.grad, torch.zeros(2))


def test_the_elbo_applies_free_bits_to_the_layers_a_family_gives(tmp_path):
    x = binary_digits()
    for family in (["model.hidden=[16]", "family=hvae", "family.latents=[4,3]", "family.hidden=[8]"], SMALL):
        torch.manual_seed(0)
        draw = VAE(OmegaConf.to_container(make_config(tmp_path, family), resolve=True)).model.draw(x)
        assert len(draw.kl_layers) >= 2
        torch.testing.assert_close(sum(draw.kl_layers), draw.kl_estimate)
        plain, floored = ELBO(Constant(), free_bits=0.0)(draw, 0), ELBO(Constant(), free_bits=1e3)(draw, 0)
        torch.testing.assert_close(plain["loss"], plain["rec"] + plain["kl"])  # off: today's loss
        torch.testing.assert_close(floored["loss"], floored["rec"] + 1e3 * len(draw.kl_layers))
        assert "kl_free_bits" not in plain
    one_layer = Draw(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2, 3), kl=torch.tensor([1.0, 2.0]))
    torch.testing.assert_close(ELBO(Constant(), free_bits=2.0)(one_layer, 0)["loss"], torch.tensor([2.0, 2.0]))  # one group


def test_a_negative_free_bits_is_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"^objective.free_bits=-1 is invalid"):
        ELBO(Constant(), free_bits=-1)


# --- short real trainings ---

TRAININGS = {
    "elbo-warmup-batchnorm": ["beta=linear", "beta.warmup_steps=8", *WITH_PICTURES],
    "iwae-no-batchnorm": ["objective=iwae", "objective.k=3", "family.batch_norm=false"],
    "elbo-free-bits": ["objective.free_bits=0.5", "objective.k=2"],
}


def csv_rows(run_dir) -> list[dict]:
    with (run_dir / "metrics.csv").open() as f:
        return [row for row in csv.DictReader(f) if row.get("train/loss")]


@pytest.mark.parametrize(  # the fast tier trains one; the full suite each
    "name", [name if name == "elbo-warmup-batchnorm" else pytest.param(name, marks=pytest.mark.slow) for name in TRAININGS]
)
def test_a_ladder_trains_a_few_steps_and_reports_each_layer(tmp_path, name):
    args = [*TINY, *SMALL, *TRAININGS[name], "trainer.limit_train_batches=8", "nll_samples=4"]
    results = train(make_config(tmp_path, args))
    rows = csv_rows(tmp_path)
    losses = [float(row["train/loss"]) for row in rows]
    assert len(losses) == 8 and all(math.isfinite(v) for v in losses)
    assert {"train/kl_layer1", "train/kl_layer3"} <= set(rows[0])
    layers = {f"test/{m}{i}" for m in ("kl_layer", "active_units_layer") for i in (1, 2, 3)}
    saved = json.loads((tmp_path / "results.json").read_text())
    assert layers | {"test/nll"} <= set(saved) and layers <= set(results) and math.isfinite(saved["test/nll"])
    if "warmup" in name:
        betas = [float(row["train/beta"]) for row in rows]
        assert betas[0] == 0.0 and betas == sorted(betas) and betas[-1] == pytest.approx(7 / 8)
        assert {p.stem for p in (tmp_path / "images").glob("*.png")} >= {"samples", "reconstructions", "hierarchy"}
    if "free-bits" in name:
        assert all(float(row["train/kl_free_bits"]) >= 3 * 0.5 - 1e-6 for row in rows)  # three layers, 0.5 nats each

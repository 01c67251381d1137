"""The model families beyond the VAE: two stochastic layers (hvae), class-conditional (cvae), discrete codes (vqvae).

Each family's maths against an independent oracle (torch.distributions, brute force, a hand-made
EMA step), then per family a short real training whose loss falls, its pictures and metrics, and a
checkpoint round trip through src/eval.py and src/sample.py; DDP on 2 CPU processes for the VQ-VAE.
"""

import csv
import json
import math
import re

import pytest
import torch
from omegaconf import OmegaConf
from torch.distributions import Normal

from conftest import TINY, WITH_PICTURES, make_config, run_script, write_image_folder
from vae.errors import ConfigError, user_error_message
from vae.evaluation import evaluate
from vae.families.vqvae import VectorQuantizer, perplexity
from vae.system import VAE
from vae.training import train

SMALL = {  # tiny nets: shapes and maths, no training
    "hvae": ["model.hidden=[16]", "family.latents=[4,3]", "family.hidden=[8]"],
    "cvae": ["model.hidden=[16]", "latent=3"],
    "vqvae": ["model.hidden=[16]", "latent=3", "family.codes=4", "family.codebook_size=8"],
}


def system(tmp_path, family: str, *overrides: str) -> VAE:
    cfg = make_config(tmp_path, [f"family={family}", *SMALL[family], *overrides])
    return VAE(OmegaConf.to_container(cfg, resolve=True))


def digits(n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.rand(n, 1, 28, 28), torch.arange(n) % 10


# --- hvae ---


def test_hvae_densities_are_the_full_hierarchy(tmp_path):
    """log q = log q(z1|x) + log q(z2|z1) and log p(z) = log p(z2) + log p(z1|z2), checked with torch.distributions."""
    model = system(tmp_path, "hvae").model
    x, _ = digits()
    draw = model.draw(x, k=5)
    assert draw.z.shape == (5, 6, 7) and draw.log_w.shape == (5, 6)
    z1, z2 = draw.z.split([4, 3], dim=-1)
    mu1, logvar1 = model.posterior.base(model.encoder(x))
    q = lambda mu, logvar, z: Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(-1)  # noqa: E731
    log_q1, log_q2 = q(mu1, logvar1, z1), q(*model.up[0](z1), z2)
    log_p2, log_p1 = Normal(0.0, 1.0).log_prob(z2).sum(-1), q(*model.down[0](z2), z1)
    torch.testing.assert_close(draw.log_qz_x, log_q1 + log_q2)
    torch.testing.assert_close(draw.log_pz, log_p2 + log_p1)
    torch.testing.assert_close(draw.logged["kl_layer1"], (log_q1 - log_p1).mean(0))
    torch.testing.assert_close(draw.logged["kl_layer2"], (log_q2 - log_p2).mean(0))
    samples = model.sample_latents(9, torch.Generator().manual_seed(0))
    assert samples.shape == (9, 7) and model.decode(samples).shape == (9, 1, 28, 28)
    assert model.encode(x).shape == (6, 7)


def test_hvae_iwae_bound_lies_above_its_elbo_and_evaluation_reports_each_layer(tmp_path):
    model = system(tmp_path, "hvae", "objective=iwae", "objective.k=4").model
    x, y = digits(16)
    metrics = evaluate(model, [(x, y)], nll_samples=64)
    assert metrics["nll"] < -metrics["elbo"] + 1.0  # log p(x) from 64 draws >= the one-draw ELBO, up to noise
    assert metrics["kl_layer1"] + metrics["kl_layer2"] == pytest.approx(metrics["kl"], rel=1e-4)
    assert {"active_units_layer1", "active_units_layer2"} <= set(metrics) and "kl_per_dim" not in metrics


def test_the_burda_preset_has_the_papers_layer_sizes(tmp_path):
    model = system(tmp_path, "hvae", "model.hidden=[200,200]", "family.latents=[100,50]", "family.hidden=[100,100]").model
    widths = lambda net: [m.out_features for m in net.modules() if isinstance(m, torch.nn.Linear)]  # noqa: E731
    assert widths(model.encoder) + [model.posterior.head.out_features // 2] == [200, 200, 100]  # q(z1|x) 784-200-200-100
    assert widths(model.up[0]) == [100, 100, 2 * 50]  # q(z2|z1) 100-100-100-50 (mean and log-variance)
    assert widths(model.down[0]) == [100, 100, 2 * 100]  # p(z1|z2) mirrored
    assert widths(model.decoder) == [200, 200, 784]
    assert isinstance(model.encoder.net[1][1], torch.nn.Tanh)
    assert make_config(tmp_path, ["family=hvae"]).model.activation == "tanh"  # family=hvae picks model=burda ...
    assert make_config(tmp_path, ["family=hvae", "model=conv"]).model.encoder._target_.endswith("ConvEncoder")  # ... unless told


# --- cvae ---


def test_cvae_decoder_and_encoder_see_the_label(tmp_path):
    model = system(tmp_path, "cvae").model
    x, y = digits()
    draw = model.draw(x, y, k=2)
    assert draw.z.shape == (2, 6, 3) and draw.log_px_z.shape == (2, 6)
    z = torch.randn(6, 3)
    assert not torch.allclose(model.decode(z, y), model.decode(z, (y + 1) % 10))  # the label changes the image
    assert not torch.allclose(model.encode(x, y), model.encode(x, (y + 1) % 10))  # and the code
    assert model.sample(4).shape == (4, 1, 28, 28)
    metrics = evaluate(model, [(x, y)], nll_samples=8)
    assert metrics["nll_given"].startswith("y: -log p(x|y)") and math.isfinite(metrics["nll"])


def test_cvae_refuses_an_unlabelled_folder_in_one_line(tmp_path):
    folder = write_image_folder(tmp_path / "pictures", n_per_class=3)
    (folder / "digit7").rename(folder / "digit3" / "more")  # one class folder: every image has the same label
    with pytest.raises(ConfigError, match=r"^family=cvae needs labelled images, but data.path=.* holds one class folder"):
        system(tmp_path, "cvae", "data=folder", f"data.path={folder}")
    assert system(tmp_path, "hvae", "data=folder", f"data.path={write_image_folder(tmp_path / 'two')}", "model=mlp")


# --- vqvae ---


def test_quantizer_picks_the_nearest_code_and_passes_gradients_straight_through():
    torch.manual_seed(0)
    quantizer = VectorQuantizer(codebook_size=5, code_dim=3)
    z_e = torch.randn(4, 2, 3, requires_grad=True)
    indices, z_q = quantizer(z_e)
    brute = torch.stack([torch.stack([(quantizer.codebook - v).norm(dim=1).argmin() for v in row]) for row in z_e])
    assert torch.equal(indices, brute) and torch.equal(z_q, quantizer.codebook[indices])
    weights = torch.randn(4, 2, 3)
    ((z_e + (z_q - z_e).detach()) * weights).sum().backward()  # the straight-through estimate of Sec. 3.2
    torch.testing.assert_close(z_e.grad, weights)


def test_ema_codebook_moves_to_the_decayed_mean_of_its_vectors():
    quantizer = VectorQuantizer(codebook_size=2, code_dim=1, ema=True, decay=0.5, eps=0.0)
    quantizer.codebook.copy_(torch.tensor([[0.0], [10.0]]))
    quantizer.code_sum.copy_(quantizer.codebook)
    quantizer(torch.tensor([[1.0], [3.0], [9.0]]))  # codes 0, 0, 1
    # N = 0.5 * 0 + 0.5 * (2, 1); m = 0.5 * (0, 10) + 0.5 * (4, 9); e = m / N (no smoothing with eps = 0)
    torch.testing.assert_close(quantizer.codebook, torch.tensor([[2.0 / 1.0], [9.5 / 0.5]]))
    quantizer.eval()
    quantizer(torch.tensor([[100.0]]))
    torch.testing.assert_close(quantizer.codebook, torch.tensor([[2.0], [19.0]]))  # evaluation moves nothing


def test_perplexity_counts_the_codes_in_use():
    assert perplexity(torch.tensor([5, 5, 5, 5])) == pytest.approx(4.0)
    assert perplexity(torch.tensor([0, 7, 0, 0])) == pytest.approx(1.0)
    p = torch.tensor([0.5, 0.25, 0.25])
    assert perplexity(torch.tensor([2, 1, 1])) == pytest.approx(math.exp(-(p * p.log()).sum()))


def test_vqvae_draw_its_losses_and_what_does_not_apply(tmp_path):
    model = system(tmp_path, "vqvae").model
    x, _ = digits()
    draw = model.draw(x)
    assert draw.z.shape == (1, 6, 12) and set(draw.extra_loss) == {"commitment"}  # EMA: no codebook loss
    assert set(system(tmp_path, "vqvae", "family.ema=false").model.draw(x).extra_loss) == {"commitment", "codebook"}
    assert torch.equal(draw.log_qz_x, torch.zeros(1, 6))  # a point mass on the nearest codes
    assert model.sample(3).shape == (3, 1, 28, 28) and model.decode(model.encode(x)).shape == x.shape
    learned = evaluate(model, [x], nll_samples=3)
    assert learned["nll"] == pytest.approx(-learned["elbo"])  # one draw is all draws
    assert "active_units" not in learned and "active_units:" in learned["not_applicable"]
    uniform = evaluate(system(tmp_path, "vqvae", "family.code_prior=uniform").model, [x], nll_samples=3)
    assert not {"elbo", "nll", "bpd", "kl"} & set(uniform) and "nll: no prior over codes is learned" in uniform["not_applicable"]
    assert 1 <= uniform["perplexity"] <= 8 and 0 <= uniform["dead_codes"] < 8


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["objective=iwae"], r"^family=vqvae takes objective=elbo with objective.k=1, not objective=iwae objective.k=5: "),
        (["prior=mog"], r"^family=vqvae takes no posterior= or prior=: "),
        (["family.code_prior=pixelcnn"], r"^family.code_prior=pixelcnn is unknown: choose one of uniform, autoregressive"),
    ],
)
def test_vqvae_refuses_what_cannot_work_in_one_line(tmp_path, overrides, message):
    with pytest.raises(Exception) as caught:  # a constructor's error arrives wrapped by Hydra's instantiate
        system(tmp_path, "vqvae", *overrides)
    assert re.match(message, user_error_message(caught.value))


def test_stacks_and_labels_refuse_the_vamp_prior_and_beta_tcvae(tmp_path):
    for family in ("hvae", "cvae"):
        with pytest.raises(ConfigError, match=rf"^prior=vamp does not fit family={family}: "):
            system(tmp_path, family, "prior=vamp", "prior.components=2")
    with pytest.raises(ConfigError, match=r"^objective=beta_tcvae does not fit family=hvae"):
        system(tmp_path, "hvae", "objective=beta_tcvae")


# --- short real trainings, pictures, metrics, eval.py and sample.py ---

TRAININGS = {
    "hvae": (["objective=iwae", "objective.k=3"], {"test/kl_layer1", "test/kl_layer2", "test/active_units_layer1",
             "test/active_units_layer2", "test/nll"}, {"samples", "reconstructions", "traversals", "hierarchy"}),
    "cvae": (["latent=4"], {"test/nll", "test/nll_given", "test/elbo"}, {"class_samples", "reconstructions"}),
    "vqvae": (["latent=4", "family.codes=8", "family.codebook_size=32"], {"test/perplexity", "test/dead_codes",
              "test/rec", "test/commitment", "test/nll"}, {"samples", "reconstructions"}),
}  # fmt: skip


def train_losses(run_dir) -> list[float]:
    with (run_dir / "metrics.csv").open() as f:
        return [float(row["train/loss"]) for row in csv.DictReader(f) if row.get("train/loss")]


@pytest.mark.slow
@pytest.mark.parametrize("family", TRAININGS)
def test_each_family_trains_draws_reports_and_round_trips_its_checkpoint(tmp_path, family):
    overrides, metrics, pictures = TRAININGS[family]
    args = [*TINY, *WITH_PICTURES, f"family={family}", *overrides, "trainer.limit_train_batches=16", "nll_samples=4"]
    results = train(make_config(tmp_path, args))
    losses = train_losses(tmp_path)
    assert len(losses) == 16 and sum(losses[-4:]) < sum(losses[:4]), losses  # the loss falls
    assert {p.stem for p in (tmp_path / "images").glob("*.png")} >= pictures
    saved = json.loads((tmp_path / "results.json").read_text())
    assert metrics <= set(saved) and metrics <= set(results)

    ckpt = tmp_path / "checkpoints" / "best.ckpt"
    result = run_script("eval.py", f"ckpt_path={ckpt}", "nll_samples=4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    evaluated = json.loads((tmp_path / "results.json").read_text())
    assert evaluated["test/nll_samples"] == 4 and metrics - {"test/commitment"} <= set(evaluated)
    label = ["label=7"] if family == "cvae" else []
    result = run_script("sample.py", f"ckpt_path={ckpt}", "n=16", *label, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    drawn = {p.stem for p in (tmp_path / "samples").glob("*.png")}
    assert drawn >= pictures | ({"samples_label7"} if label else set())


@pytest.mark.slow
def test_sample_py_refuses_a_label_for_an_unconditional_model_in_one_line(tmp_path):
    train(make_config(tmp_path, [*TINY, "nll_samples=1"]))
    result = run_script("sample.py", f"ckpt_path={tmp_path / 'checkpoints' / 'last.ckpt'}", "label=7", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: label=7 needs a conditional model (family=cvae), but this checkpoint is family=vae: drop label="


@pytest.mark.slow
def test_vqvae_with_ema_trains_under_ddp_on_two_processes(run_cli, tmp_path):
    args = [*TINY, "family=vqvae", "family.codes=4", "family.codebook_size=16", "latent=4",
            "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "nll_samples=1", "hydra.run.dir=run"]  # fmt: skip
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert 1 <= saved["test/perplexity"] <= 16 and "test/codebook" not in saved  # EMA: no codebook loss
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 3 and last["state_dict"]["model.quantizer.cluster_size"].sum() > 0

"""likelihood=msssim (Snell et al. 2017; pythae's MSSSIM_VAE): MS-SSIM against an SSIM written here, its refusals,
and a few training steps on the embedded digits that report rec and kl and leave out the figures a loss has no
meaning for (log p(x), bits/dim, the ELBO).
"""

import math

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from conftest import TINY, make_config
from vae.errors import ConfigError, user_error_message
from vae.evaluation import evaluate
from vae.likelihoods.msssim import MSSSIM, WANG_BETAS, msssim, window_size
from vae.system import System
from vae.training import train

C1, C2 = 0.01**2, 0.03**2  # Wang et al. 2004, Eq. 13, for a data range of 1


def ssim_and_cs(a: torch.Tensor, b: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Single-scale SSIM and its contrast-structure term (Wang et al. 2004, Eq. 13) in float64 with a Gaussian window,
    averaged over pixels and channels: the SSIM map over the whole image with borders reflected, the contrast term
    over the windows inside the image (torchmetrics' conventions). a, b: (B, C, H, W) -> (B,), (B,)"""
    size = window_size(sigma)
    offsets = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(offsets**2) / (2 * sigma**2))
    window = (g[:, None] * g[None, :] / g.sum() ** 2)[None, None]  # (1, 1, size, size)
    batch, pad = len(a), size // 2
    a, b = (F.pad(t.double().flatten(0, 1)[:, None], [pad] * 4, mode="reflect") for t in (a, b))  # (B * C, 1, H + 2p, W + 2p)
    mu_a, mu_b = F.conv2d(a, window), F.conv2d(b, window)  # (B * C, 1, H, W)
    var_a, var_b = F.conv2d(a * a, window) - mu_a**2, F.conv2d(b * b, window) - mu_b**2
    cov = F.conv2d(a * b, window) - mu_a * mu_b
    cs = (2 * cov + C2) / (var_a + var_b + C2)
    ssim = (2 * mu_a * mu_b + C1) / (mu_a**2 + mu_b**2 + C1) * cs
    inside = cs[..., pad:-pad, pad:-pad]
    return ssim.reshape(batch, -1).mean(1), inside.reshape(batch, -1).mean(1)


def test_msssim_is_one_for_an_image_and_itself_and_below_one_otherwise():
    x = torch.rand(4, 3, 32, 32)
    torch.testing.assert_close(msssim(x, x, 3, 0.7), torch.ones(4))
    assert (msssim(torch.rand(4, 3, 32, 32), x, 3, 0.7) < 0.9).all()
    assert (MSSSIM().log_prob(torch.logit(x.clamp(1e-4, 1 - 1e-4)), x).abs() < 1e-2).all()


def test_msssim_matches_an_ssim_written_here_at_one_and_two_scales():
    torch.manual_seed(0)
    x, x_hat = torch.rand(3, 2, 28, 28), torch.rand(3, 2, 28, 28)
    x_hat = 0.6 * x + 0.4 * x_hat  # correlated, so the terms are far from 0 and 1
    ssim, cs = ssim_and_cs(x_hat, x, 0.7)
    assert 0.2 < ssim.min() and ssim.max() < 0.9  # far from both ends, so the comparison means something
    torch.testing.assert_close(msssim(x_hat, x, 1, 0.7).double(), (ssim + 1) / 2, atol=1e-5, rtol=0)
    # two scales: the contrast-structure term of the full image, then the SSIM of the half image
    half, _ = ssim_and_cs(F.avg_pool2d(x_hat, 2), F.avg_pool2d(x, 2), 0.7)
    b1, b2 = (b / sum(WANG_BETAS[:2]) for b in WANG_BETAS[:2])
    expected = ((cs + 1) / 2) ** b1 * ((half + 1) / 2) ** b2
    torch.testing.assert_close(msssim(x_hat, x, 2, 0.7).double(), expected, atol=1e-5, rtol=0)


def test_images_too_small_for_the_scales_are_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"^likelihood=msssim with likelihood.scales=3 and a 5-pixel window \(likelihood.sigma=0.7\) "
                       r"needs images of at least 20 pixels a side, not 16 x 16: lower likelihood.scales or likelihood.sigma$"):
        MSSSIM().log_prob(torch.zeros(2, 1, 16, 16), torch.rand(2, 1, 16, 16))
    MSSSIM(scales=2).log_prob(torch.zeros(2, 1, 16, 16), torch.rand(2, 1, 16, 16))  # two scales fit
    with pytest.raises(ConfigError, match=r"^likelihood.scales=6 is invalid: it must be an integer from 1 to 5$"):
        MSSSIM(scales=6)


SMALL = ["model.hidden=[16]", "latent=3", "likelihood=msssim"]


def test_a_few_steps_train_and_the_figures_a_loss_has_no_meaning_for_are_left_out(tmp_path):
    results = train(make_config(tmp_path, [*TINY, *SMALL, "nll_samples=4"]))
    assert math.isfinite(results["test/rec"]) and results["test/rec"] > 0 and math.isfinite(results["test/kl"])
    assert not {"test/elbo", "test/nll", "test/bpd"} & set(results), sorted(results)


def test_evaluate_names_why_log_px_is_left_out(tmp_path):
    model = System(OmegaConf.to_container(make_config(tmp_path, SMALL), resolve=True)).model
    figures = evaluate(model, [torch.rand(4, 1, 28, 28)], nll_samples=2)
    assert {"rec", "kl"} <= set(figures) and not {"elbo", "nll", "bpd"} & set(figures)
    assert "nll: the reconstruction term is a loss (likelihood=msssim)" in figures["not_applicable"]
    assert model.decode(model.encode(torch.rand(2, 1, 28, 28))).shape == (2, 1, 28, 28)


@pytest.mark.slow
def test_a_run_on_images_too_small_stops_with_the_one_line(tmp_path):
    with pytest.raises(Exception) as caught:
        train(make_config(tmp_path, [*TINY, *SMALL, "likelihood.scales=5"]))
    assert user_error_message(caught.value).startswith("likelihood=msssim with likelihood.scales=5"), user_error_message(caught.value)

"""An MS-SSIM reconstruction term in place of -log p(x|z) (Snell et al. 2017, "Learning to Generate Images with
Perceptual Similarity Metrics"; pythae's MSSSIM_VAE): rec = scale * (1 - MS-SSIM(x_hat, x)).

MS-SSIM is Wang et al. 2003's ("Multi-scale structural similarity for image quality assessment"): the contrast-
structure term of each of `scales` scales (the image halved between them) and the full SSIM of the last, each raised
to its exponent. torchmetrics computes it with a Gaussian window whose width follows `sigma` (2 * int(3.5 sigma + 0.5)
+ 1 pixels: 5 for sigma = 0.7). The standard 5 scales of an 11-pixel window need 176 pixels a side; 28 x 28 digits
and 32 x 32 images take 3 scales of a 5-pixel window (pythae's MNIST setting is a 3-pixel window). The exponents are
the first `scales` of Wang et al.'s five, renormalised to sum to one; each scale's term is mapped to [0, 1] as
(s + 1) / 2 (torchmetrics' normalize="simple") so that a negative term never meets a fractional power.

Not a normalised density: `log_prob` is -scale * (1 - MS-SSIM), so a run trains and reports rec and kl, but
log p(x), bits/dim and the ELBO in nats mean nothing; `normalised = False` tells the families, which name them in
`Family.not_applicable`.
"""

import torch
from torch import Tensor
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

from vae.errors import ConfigError, check_int, check_number

WANG_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, Sec. 3.2: the exponents of 5 scales


def window_size(sigma: float) -> int:
    """The pixels a side of torchmetrics' Gaussian window for `sigma` (its `gauss_kernel_size`)."""
    return int(3.5 * sigma + 0.5) * 2 + 1


def smallest_side(scales: int, sigma: float) -> int:
    """The fewest pixels a side for which torchmetrics computes MS-SSIM: the window fits the last scale, and its checks."""
    window = window_size(sigma)
    return max(2**scales, window * 2 ** (scales - 1), window * max(1, scales - 1) ** 2)


def msssim(x_hat: Tensor, x: Tensor, scales: int, sigma: float) -> Tensor:
    """MS-SSIM per image, each scale's term mapped to [0, 1]. x_hat, x: (B, C, H, W) in [0, 1] -> (B,), 1 where equal."""
    side = min(x.shape[-2:])
    if side < smallest_side(scales, sigma):
        raise ConfigError(
            f"likelihood=msssim with likelihood.scales={scales} and a {window_size(sigma)}-pixel window "
            f"(likelihood.sigma={sigma}) needs images of at least {smallest_side(scales, sigma)} pixels a side, "
            f"not {x.shape[-2]} x {x.shape[-1]}: lower likelihood.scales or likelihood.sigma"
        )
    betas = WANG_BETAS[:scales]
    window = window_size(sigma)
    return multiscale_structural_similarity_index_measure(
        x_hat, x, sigma=sigma, kernel_size=window, reduction="none", data_range=1.0,
        betas=tuple(b / sum(betas) for b in betas), normalize="simple",
    )  # fmt: skip


class MSSSIM:
    """The decoder gives one logit map per channel; x_hat = sigmoid(logits) is compared with x by MS-SSIM."""

    params_per_pixel = 1
    normalised = False  # a loss, not a density: no log p(x), bits/dim or ELBO in nats

    def __init__(self, scale: float | None = None, scales: int = 3, sigma: float = 0.7):
        self.scale = None if scale is None else check_number("likelihood.scale", scale, 0.0)
        self.scales = check_int("likelihood.scales", scales, 1, len(WANG_BETAS))
        self.sigma = check_number("likelihood.sigma", sigma, 0.15)  # below, the window is one pixel: no structure

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """-scale * (1 - MS-SSIM), (B,); scale null: C * H * W, so it weighs like a sum over the pixels."""
        x_hat = torch.sigmoid(params.float())  # (B, C, H, W)
        scale = x_hat[0].numel() if self.scale is None else self.scale
        return -scale * (1.0 - msssim(x_hat, x.expand_as(x_hat).float(), self.scales, self.sigma))

    def mean(self, params: Tensor) -> Tensor:
        return torch.sigmoid(params.float())

"""A discretised mixture of logistics over the 256 values of each 8-bit pixel (Salimans et al. 2017, PixelCNN++).

Each channel of each pixel gets its own mixture (PixelCNN++ also couples the colour channels
linearly; this version keeps them independent given z). The probability of a value is the
logistic mass of its bin, with the edge bins open to +-infinity, so the 256 probabilities sum
to one and -log p is directly in nats of the 0-255 data: bits/dim = nll / (D ln 2).
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from vae.errors import check_int

LOG_SCALE_MIN = -7.0  # as PixelCNN++: keeps the bins' mass from underflowing


def discretized_logistic_mixture_log_prob(x: Tensor, logits: Tensor, means: Tensor, log_scales: Tensor) -> Tensor:
    """log P(x) of 8-bit values under a mixture of discretised logistics, per element.

    x: (...) in {0, 1/255, ..., 1}; logits, means, log_scales: (M, ...) with means on the [-1, 1] scale -> (...)
    """
    x = x * 2.0 - 1.0  # bins of width 2/255 centred on the values, on [-1, 1]
    log_scales = log_scales.clamp(min=LOG_SCALE_MIN)
    inv_scale = torch.exp(-log_scales)
    centred = x - means  # (M, ...)
    cdf_plus = torch.sigmoid(inv_scale * (centred + 1.0 / 255))
    cdf_min = torch.sigmoid(inv_scale * (centred - 1.0 / 255))
    log_cdf_plus = F.logsigmoid(inv_scale * (centred + 1.0 / 255))  # the bin of 0 reaches to -infinity
    log_one_minus_cdf_min = -F.softplus(inv_scale * (centred - 1.0 / 255))  # the bin of 255 reaches to +infinity
    mass = cdf_plus - cdf_min
    mid = inv_scale * centred
    log_pdf_mid = mid - log_scales - 2.0 * F.softplus(mid)  # where the mass underflows: density x bin width
    log_mass = torch.where(mass > 1e-5, torch.log(mass.clamp(min=1e-12)), log_pdf_mid - math.log(127.5))
    log_p = torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_mass))
    return torch.logsumexp(log_p + torch.log_softmax(logits, dim=0), dim=0)


class LogisticMixture:
    """The decoder gives, per channel, `components` mixture logits, means and log-scales."""

    normalised = True  # a density over the 256 values: log p(x) and bits/dim apply

    def __init__(self, components: int = 10):
        self.components = check_int("likelihood.components", components, 1)
        self.params_per_pixel = 3 * self.components

    def split(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B, 3 * M * C, H, W) -> logits, means, log_scales, each (M, B, C, H, W)."""
        batch, _, height, width = params.shape
        parts = params.float().view(batch, 3, self.components, -1, height, width).transpose(0, 2)  # (M, 3, B, C, H, W)
        return parts[:, 0], torch.tanh(parts[:, 1]), parts[:, 2]

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        return discretized_logistic_mixture_log_prob(x, *self.split(params)).flatten(1).sum(dim=1)

    def mean(self, params: Tensor) -> Tensor:
        logits, means, _ = self.split(params)
        return ((torch.softmax(logits, dim=0) * means).sum(dim=0) + 1.0) / 2.0  # the mixture's mean, on [0, 1]

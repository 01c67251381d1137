"""A diagonal Gaussian over pixel values in [0, 1], with a learned per-pixel variance.

Its density is over the continuous values; bits/dim of the 8-bit data would add 8 bits
(use likelihood=logistic_mixture for a density over the 256 values themselves).
"""

from torch import Tensor

from vae.distributions import log_normal

LOGVAR_RANGE = (-10.0, 5.0)  # keeps the density finite on pixels the decoder fits exactly


def gaussian_log_likelihood(mean: Tensor, logvar: Tensor, x: Tensor) -> Tensor:
    """log N(x; mean, diag(exp(logvar))), summed over pixels. mean, logvar, x: (B, ...) -> (B,)"""
    return log_normal(x.flatten(1), mean.flatten(1), logvar.flatten(1))


class Gaussian:
    """The decoder gives a mean and a log-variance map per channel."""

    params_per_pixel = 2
    normalised = True  # a density: log p(x) and bits/dim apply

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        mean, logvar = params.float().chunk(2, dim=1)  # (B, C, H, W) each
        return gaussian_log_likelihood(mean, logvar.clamp(*LOGVAR_RANGE), x)

    def mean(self, params: Tensor) -> Tensor:
        return params.float().chunk(2, dim=1)[0].clamp(0.0, 1.0)

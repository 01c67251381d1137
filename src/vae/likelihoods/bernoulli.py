"""Independent Bernoulli pixels given logits (Kingma & Welling 2014, Appendix C.1)."""

import torch
import torch.nn.functional as F
from torch import Tensor


def bernoulli_log_likelihood(logits: Tensor, x: Tensor) -> Tensor:
    """log p(x|z) for independent Bernoulli pixels; stable for any logit size.

    logits, x: (B, ...) with x in [0, 1] (x may broadcast to logits) -> (B,)
    torch's fused kernel on every device: on torch 2.14 it is also the faster one on the CPU (fwd+bwd at
    128 x 784: 360-390 us against 405-445 for x * l - relu(l) + log(sigmoid(|l|)) by hand; docs/performance.md).
    """
    per_pixel = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
    return per_pixel.flatten(1).sum(dim=1)


class Bernoulli:
    """Binary (or [0, 1] grey) images; the decoder gives one logit per pixel."""

    params_per_pixel = 1
    normalised = True  # a density: log p(x) and bits/dim apply

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        return bernoulli_log_likelihood(params.float(), x)

    def mean(self, params: Tensor) -> Tensor:
        return torch.sigmoid(params.float())

"""Independent Bernoulli pixels given logits (Kingma & Welling 2014, Appendix C.1)."""

import torch
import torch.nn.functional as F
from torch import Tensor


def bernoulli_log_likelihood(logits: Tensor, x: Tensor) -> Tensor:
    """log p(x|z) for independent Bernoulli pixels; stable for any logit size.

    logits, x: (B, ...) with x in [0, 1] (x may broadcast to logits) -> (B,)
    """
    if logits.device.type == "cpu":  # 3x faster on the CPU than torch's kernel (see `BernoulliLogProb`)
        per_pixel = BernoulliLogProb.apply(logits, x)
    else:  # one fused kernel: on a GPU a step is launch-bound, so fewer kernels win
        per_pixel = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
    return per_pixel.flatten(1).sum(dim=1)


class BernoulliLogProb(torch.autograd.Function):
    """x * l - softplus(l) per pixel, with softplus(l) = relu(l) - log(sigmoid(|l|)).

    Why: on the CPU, torch's log-sigmoid (behind `binary_cross_entropy_with_logits`) runs `log1p` without
    vector instructions, five times slower per element than `log`; it was half of a small model's step and
    of log p(x). sigmoid(|l|) lies in [0.5, 1], so `log` loses nothing there but terms below 6e-8 a pixel.
    The gradient is the closed form (x - sigmoid(l)), one pass instead of autograd's chain.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, x: Tensor) -> Tensor:
        ctx.save_for_backward(logits, x)
        return torch.mul(x, logits).sub_(logits.clamp_min(0)).add_(torch.sigmoid(logits.abs()).log_())

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        logits, x = ctx.saved_tensors
        grad_logits = grad * (x - torch.sigmoid(logits)) if ctx.needs_input_grad[0] else None
        grad_x = (grad * logits).sum_to_size(x.shape) if ctx.needs_input_grad[1] else None
        return grad_logits, grad_x


class Bernoulli:
    """Binary (or [0, 1] grey) images; the decoder gives one logit per pixel."""

    params_per_pixel = 1

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        return bernoulli_log_likelihood(params.float(), x)

    def mean(self, params: Tensor) -> Tensor:
        return torch.sigmoid(params.float())

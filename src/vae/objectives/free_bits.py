"""Free bits (Kingma et al. 2016, "Improved Variational Inference with Inverse Autoregressive Flow", Appendix C):
a KL floor of lambda nats per group of latents, so the optimiser gains nothing by pushing a group's KL below it.

  L_lambda = E_x[E_q[log p(x|z)]] - sum_j max(lambda, E_x[KL(q(z_j|x) || p(z_j))]),

the max taken over the minibatch mean of each group's KL. A group here is a stochastic layer (`Draw.kl_layers`,
whose p(z_j) is the layer's conditional prior), or the whole code for a one-layer family. Under DDP each
process takes the max over its own share of the batch.
"""

import torch
from torch import Tensor


def free_bits_kl(kl_groups: list[Tensor], free_bits: float) -> Tensor:
    """The free-bits KL term per example, whose batch mean is sum_j max(lambda, mean_b KL_j).

    kl_groups: J tensors (B,), each group's KL per example -> (B,). A group whose batch-mean KL is at most
    lambda contributes the constant lambda (no gradient); the others contribute their KL unchanged.
    """
    total = kl_groups[0].new_zeros(kl_groups[0].shape)
    for kl in kl_groups:
        total = total + torch.where(kl.mean() > free_bits, kl, torch.full_like(kl, free_bits))  # no sync, no graph break
    return total

"""The regularised deterministic autoencoder (Ghosh et al. 2020, "From Variational to Deterministic Autoencoders",
Eq. 2 and Sec. 3): L = -log p(x|z) + beta ||z||^2 / 2 + lambda L_REG, z the deterministic encoder's code.

`regulariser` picks the decoder's regulariser L_REG (Sec. 3): `l2`, weight decay on the decoder,
||theta_dec||^2 summed over its parameters (`Family.decoder_parameters`); `gp`, the gradient penalty
||grad_z log p(x|z)||^2 at the code, by autograd with create_graph=True so the penalty trains the
decoder; `none`, the paper's plain "RAE" row. The gradient penalty needs the graph of z, so it is a
training term: in validation and test, where no graph is kept, it is left out of the loss. Ghosh et al.
sample from a density fitted to the codes after training (Sec. 4); here samples come from `prior=`
(N(0, I), the density the code penalty beta ||z||^2 / 2 is the log of).
"""

from collections.abc import Callable

import torch
from torch import Tensor

from vae.draw import Draw
from vae.errors import ConfigError, check_number
from vae.objectives.base import Objective, refuse_schedule
from vae.objectives.elbo import elbo_terms
from vae.schedules import Schedule

REGULARISERS = ("l2", "gp", "none")


def l2_penalty(parameters: list[torch.nn.Parameter]) -> Tensor:
    """||theta||^2, summed over every weight of the given parameters: a scalar."""
    return sum((p.float().pow(2).sum() for p in parameters), torch.zeros(()))


def gradient_penalty(draw: Draw) -> Tensor:
    """||grad_z log p(x|z)||^2 per example (B,), the mean over the K draws; differentiable (create_graph=True).

    draw.z (K, B, D) must be the tensor the decoder read: each example's log p(x|z) depends on its own z alone.
    """
    (grad,) = torch.autograd.grad(draw.log_px_z.sum(), draw.z, create_graph=True)  # (K, B, D)
    return grad.pow(2).sum(dim=-1).mean(dim=0)


class RAE(Objective):
    name = "rae"
    needs_log_q = False  # trains a deterministic encoder

    def __init__(self, beta: float = 1.0, regulariser: str = "l2", regulariser_weight: float = 1e-4,
                 schedule: Schedule | None = None):  # fmt: skip
        self.beta = check_number("objective.beta", beta, 0.0)
        if regulariser not in REGULARISERS:
            raise ConfigError(
                f"objective.regulariser={regulariser} is unknown: choose one of {', '.join(REGULARISERS)}"
            )
        self.regulariser = regulariser
        self.regulariser_weight = check_number("objective.regulariser_weight", regulariser_weight, 0.0)
        refuse_schedule(schedule, "rae", "its code penalty is weighed by objective.beta")
        self.decoder_parameters: Callable[[], list] = lambda: []  # until `attach`

    def attach(self, model) -> None:
        self.decoder_parameters = model.decoder_parameters

    def __call__(self, draw: Draw, step: int) -> dict:
        terms = elbo_terms(draw)  # elbo and kl with log q = 0: what selects best.ckpt, see vae.posteriors.deterministic
        terms["code_penalty"] = draw.z.pow(2).sum(dim=-1).mean(dim=0) / 2  # ||z||^2 / 2, (B,)
        terms["loss"] = terms["rec"] + self.beta * terms["code_penalty"]
        if self.regulariser == "l2":
            terms["regulariser"] = l2_penalty(self.decoder_parameters()).to(terms["loss"].device)
        elif self.regulariser == "gp" and torch.is_grad_enabled() and draw.z.requires_grad:
            terms["regulariser"] = gradient_penalty(draw)
        if "regulariser" in terms:
            terms["loss"] = terms["loss"] + self.regulariser_weight * terms["regulariser"]
        return terms

"""A discriminator on codes and the density-ratio trick, shared by FactorVAE and the adversarial autoencoder.

A classifier trained to tell samples of p (label 1) from samples of q (label 0), with as many of each, has
at its optimum D*(z) = p(z) / (p(z) + q(z)), so its logit log D/(1 - D) = log p(z) - log q(z) (Sugiyama et
al. 2012; Kim & Mnih 2018, Sec. 3): the mean logit over draws of p estimates KL(p || q). The discriminator
is one logit, so that ratio is its output as it stands.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vae.errors import ConfigError, check_int, check_number
from vae.families.base import Family
from vae.objectives.base import Objective


class Discriminator(nn.Module):
    """An MLP z (B, D) -> one logit (B,), with leaky ReLUs (slope 0.2) as in Kim & Mnih 2018, Appendix
    (there: 6 layers of 1000 units)."""

    def __init__(self, latent_dim: int, hidden: int, layers: int):
        super().__init__()
        widths = [latent_dim, *[hidden] * layers]
        blocks: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            blocks += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*blocks, nn.Linear(widths[-1], 1))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).squeeze(-1)  # (B,)


class WithDiscriminator(Objective):
    """An objective that owns a `Discriminator` on the codes, trained by its own Adam (Kingma & Ba 2015).

    discriminator_hidden, discriminator_layers: its width and depth; discriminator_lr, discriminator_betas:
    its Adam's (Kim & Mnih 2018 use lr 1e-4, betas (0.5, 0.9)). The discriminator is built in `attach`,
    once the family's code width is known.
    """

    def __init__(
        self, discriminator_hidden: int, discriminator_layers: int, discriminator_lr: float, discriminator_betas
    ):
        self.hidden = check_int("objective.discriminator_hidden", discriminator_hidden, 1)
        self.layers = check_int("objective.discriminator_layers", discriminator_layers, 1)
        self.lr = check_number("objective.discriminator_lr", discriminator_lr, 0.0)
        betas = tuple(discriminator_betas)
        if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
            raise ConfigError(
                f"objective.discriminator_betas={list(betas)} is invalid: it must be two numbers in [0, 1)"
            )
        self.betas = (float(betas[0]), float(betas[1]))
        self.discriminator: Discriminator | None = None

    def attach(self, family: Family) -> None:
        self.discriminator = Discriminator(family.latent_dim, self.hidden, self.layers)

    def parts(self) -> nn.Module | None:
        return self.discriminator

    def optimizer(self, parameters) -> torch.optim.Optimizer:
        return torch.optim.Adam(parameters, lr=self.lr, betas=self.betas)

    def critic(self) -> Discriminator:
        """The discriminator, which `attach` built."""
        assert self.discriminator is not None, "attach(family) builds the discriminator before the objective is called"
        return self.discriminator


def classifier_loss(logits_p: Tensor, logits_q: Tensor) -> Tensor:
    """Cross-entropy of telling samples of p (label 1) from as many of q (label 0), per pair: (B,), (B,) -> (B,).

    softplus(-l) = -log sigmoid(l) and softplus(l) = -log(1 - sigmoid(l)); halved so it is the mean over the 2B.
    """
    return 0.5 * (F.softplus(-logits_p) + F.softplus(logits_q))


def permute_dims(z: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Each dimension of the codes shuffled across the batch on its own (Kim & Mnih 2018, Algorithm 1).

    z: (B, D) -> (B, D). Each column keeps its values (the marginals q(z_d)); the rows no longer belong
    together, so the rows are draws of prod_d q(z_d).
    """
    batch, dims = z.shape
    order = torch.rand(batch, dims, generator=generator).argsort(dim=0).to(z.device)  # (B, D): a permutation per column
    return z.gather(0, order)

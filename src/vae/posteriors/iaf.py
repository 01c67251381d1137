"""Inverse autoregressive flow on a diagonal Gaussian (Kingma et al. 2016, "Improved Variational Inference
with Inverse Autoregressive Flow", Sec. 4 and Eq. 14).

Each step t computes (m, s) = MADE(z, h) autoregressively in z, then z <- sigma * z + (1 - sigma) * m
with sigma = sigmoid(s); the Jacobian is triangular, so log q falls by sum_d log sigma_d. The order
of the dimensions is reversed between steps. Written here (about 60 lines) rather than taken from a
flow library: zuko and nflows build flows as standalone distributions, not conditioned on an
encoder's context with the sigmoid-gated update of the paper, and adding one for this would
cost a dependency for less code than it saves.
"""

import torch
from torch import Tensor, nn

from vae.distributions import log_normal, reparameterize
from vae.errors import check_int
from vae.posteriors.gaussian import GaussianPosterior


class MaskedLinear(nn.Linear):
    """A linear map whose weight is multiplied by a fixed 0/1 mask (Germain et al. 2015, MADE)."""

    def __init__(self, in_features: int, out_features: int, mask: Tensor):
        super().__init__(in_features, out_features)
        self.register_buffer("mask", mask)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """z (.., D), context (.., H) -> (m, s) (.., D) each, where output d depends only on z_{<d} and the context."""

    def __init__(self, latent_dim: int, hidden: int, context: int):
        super().__init__()
        degrees_in = torch.arange(1, latent_dim + 1)  # input d has degree d
        degrees_hidden = torch.arange(hidden) % max(1, latent_dim - 1) + 1  # hidden units see z_1..z_deg
        self.inp = MaskedLinear(latent_dim, hidden, (degrees_hidden[:, None] >= degrees_in[None, :]).float())
        self.context = nn.Linear(context, hidden)
        self.hid = MaskedLinear(hidden, hidden, (degrees_hidden[:, None] >= degrees_hidden[None, :]).float())
        out_mask = (degrees_in[:, None] > degrees_hidden[None, :]).float()  # output d sees hidden degrees < d
        self.out = MaskedLinear(hidden, 2 * latent_dim, torch.cat([out_mask, out_mask]))
        nn.init.normal_(self.out.weight, std=1e-3)  # start near a fixed update: sigma = sigmoid(1.5), m = 0
        with torch.no_grad():
            self.out.bias.copy_(torch.cat([torch.zeros(latent_dim), torch.full((latent_dim,), 1.5)]))

    def forward(self, z: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        a = torch.relu(self.inp(z) + self.context(context))
        a = torch.relu(self.hid(a))
        m, s = self.out(a).chunk(2, dim=-1)
        return m, s


class IAFPosterior(nn.Module):
    """A diagonal Gaussian base, then `steps` IAF steps conditioned on a context from the encoder."""

    diagonal_gaussian = False  # the flow leaves the Gaussian family
    has_log_q = True
    on_sphere = False
    needs_log_joint = False  # its draws do not depend on the decoder

    def __init__(self, in_features: int, latent_dim: int, steps: int = 2, hidden: int = 320, context: int = 64):
        super().__init__()
        self.latent_dim = check_int("latent", latent_dim, 1)
        check_int("posterior.steps", steps, 1)
        check_int("posterior.hidden", hidden, 1)
        check_int("posterior.context", context, 1)
        self.gaussian = GaussianPosterior(in_features, latent_dim)
        self.to_context = nn.Linear(in_features, context)
        self.steps = nn.ModuleList(MADE(latent_dim, hidden, context) for _ in range(steps))

    def base(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return self.gaussian.base(h)

    def flow(self, z: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        """z (.., D) -> (f(z) (.., D), log |det df/dz| (..))."""
        log_det = torch.zeros(z.shape[:-1], device=z.device)
        for made in self.steps:
            m, s = made(z, context)
            sigma = torch.sigmoid(s.float())
            z = sigma * z + (1 - sigma) * m.float()
            log_det = log_det + torch.log(sigma).sum(dim=-1)
            z = z.flip(-1)  # the next step is autoregressive in the reverse order
        return z, log_det

    def forward(self, h: Tensor, k: int = 1) -> tuple[Tensor, Tensor, None]:
        mu, logvar = self.base(h)
        z0 = reparameterize(mu.expand(k, *mu.shape), logvar.expand(k, *logvar.shape))  # (K, B, D)
        context = self.to_context(h).float().expand(k, -1, -1)  # (K, B, C)
        z, log_det = self.flow(z0, context)
        return z, log_normal(z0, mu, logvar) - log_det, None

    def mean(self, h: Tensor) -> Tensor:
        """The flow applied to the base mean: a typical code (q's mean has no closed form)."""
        return self.flow(self.base(h)[0], self.to_context(h).float())[0]

    def kl(self, h: Tensor, prior) -> None:
        """No closed form: the objective takes the Monte Carlo estimate log q - log p."""
        return None

"""The Ladder VAE (Sønderby et al. 2016, "Ladder Variational Autoencoders", Sec. 2.2, Eq. 17-21):
any number of stochastic layers, with inference that runs top-down and shares the generative path.

Bottom-up, a deterministic path d_1 = encoder(x), d_l = MLP(d_(l-1)) gives each layer a Gaussian
N(mu_hat_l, sigma_hat_l^2) of the evidence from x (`model=`'s encoder and `posterior=gaussian`'s head
for layer 1, the family's own blocks and heads above). Top-down, the generative model is
p(zL) p(z(L-1)|zL) ... p(z1|z2) p(x|z1) with Gaussian p(z_l|z_(l+1)) = N(mu_p, sigma_p^2) and `prior=`'s
p(zL); the posterior follows the same path, q(zL|x) = N(mu_hat_L, sigma_hat_L^2) and below it
q(z_l|z_(l+1), x) the precision-weighted merge of the two Gaussians (`merge_gaussians`, Eq. 18-19).
Batch normalisation in the deterministic blocks is optional (family.batch_norm; Sec. 2.3 finds it,
with KL warm-up, crucial for several layers), and so is a floor under every log-variance
(family.logvar_floor, `soft_floor`; the paper's code bounds each variance below with softplus + eps).
A Draw's z is the concatenation [z1, ..., zL] and its densities are the full hierarchical ones, so the ELBO, the IWAE bound and evaluation's log p(x)
need nothing else. The paper's MNIST model: family=ladder model.hidden=[512,512] (the defaults here).
"""

import math

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from vae.distributions import log_normal, reparameterize
from vae.draw import Draw
from vae.errors import ConfigError, check_int, check_number
from vae.families.base import layer_kl_name
from vae.families.hierarchy import Hierarchy
from vae.families.parts import gaussian_parts, option
from vae.families.vae import refuse_encoder_priors
from vae.nets.mlp import ACTIVATIONS


def merge_gaussians(mu_hat: Tensor, logvar_hat: Tensor, mu_p: Tensor, logvar_p: Tensor) -> tuple[Tensor, Tensor]:
    """The normalised product of two diagonal Gaussians: the ladder's posterior (Sønderby et al. 2016, Eq. 18-19).

    sigma_q^2 = 1 / (sigma_hat^-2 + sigma_p^-2),  mu_q = (mu_hat sigma_hat^-2 + mu_p sigma_p^-2) sigma_q^2,
    written with log-variances so that no precision over- or underflows: log sigma_q^2 is
    -logaddexp(-logvar_hat, -logvar_p) and mu_hat's weight sigma_q^2 / sigma_hat^2 is sigmoid(logvar_p - logvar_hat).
    All broadcastable (..., D) -> mu_q, logvar_q (..., D).
    """
    logvar_q = -torch.logaddexp(-logvar_hat, -logvar_p)
    weight_hat = torch.sigmoid(logvar_p - logvar_hat)  # the precision share of the bottom-up evidence
    mu_q = weight_hat * mu_hat + (1.0 - weight_hat) * mu_p
    return mu_q, logvar_q


def soft_floor(logvar: Tensor, floor: float | None) -> Tensor:
    """floor + softplus(logvar - floor): a smooth lower bound, nearly the identity a few nats above the floor.

    Why: a unit that no layer uses leaves p(z_l|z_(l+1))'s variance free to shrink, since q follows it at no KL;
    a 300-epoch ladder drove one to log sigma^2 = -67 and then to a NaN. None leaves logvar as it is.
    """
    return logvar if floor is None else floor + nn.functional.softplus(logvar - floor)


class Block(nn.Module):
    """h (..., D_in) -> `depth` times [Linear, optional BatchNorm, activation] -> (..., width).

    Leading dimensions are flattened for batch normalisation, so K draws of B examples share one batch.
    """

    def __init__(self, in_dim: int, width: int, depth: int, activation: str, batch_norm: bool):
        super().__init__()
        layers: list[nn.Module] = []
        for n_in in [in_dim] + [width] * (depth - 1):
            layers += [nn.Linear(n_in, width), *([nn.BatchNorm1d(width)] if batch_norm else []), ACTIVATIONS[activation]()]
        self.net = nn.Sequential(*layers)
        self.out_features = width

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h.flatten(0, -2)).view(*h.shape[:-1], self.out_features)


class GaussianHead(nn.Module):
    """h (..., F) -> (mu, logvar) (..., D) each, float32: one diagonal Gaussian, as `posterior=gaussian` gives."""

    def __init__(self, in_features: int, out_dim: int, logvar_floor: float | None = None):
        super().__init__()
        self.linear = nn.Linear(in_features, 2 * out_dim)
        self.logvar_floor = logvar_floor

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.linear(h).float().chunk(2, dim=-1)
        return mu, soft_floor(logvar, self.logvar_floor)


class TopDown(nn.Module):
    """p(z_l | z_(l+1)): z_(l+1) (..., D_(l+1)) -> block -> (mu_p, logvar_p) (..., D_l)."""

    def __init__(
        self, upper: int, lower: int, width: int, depth: int, activation: str, batch_norm: bool, logvar_floor: float | None,
    ):  # fmt: skip
        super().__init__()
        self.block = Block(upper, width, depth, activation, batch_norm)
        self.head = GaussianHead(width, lower, logvar_floor)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self.head(self.block(z))


class LadderModel(Hierarchy):
    """x -> d_1 -> ... -> d_L bottom-up; zL -> ... -> z1 -> x top-down, for generation and inference alike."""

    name = "ladder"

    def __init__(
        self, encoder, decoder, posterior, prior, likelihood, latents: list[int], widths: list[int],
        depth: int = 2, activation: str = "relu", batch_norm: bool = True, logvar_floor: float | None = None,
    ):  # fmt: skip
        super().__init__()
        self.encoder, self.decoder, self.posterior, self.prior, self.likelihood = encoder, decoder, posterior, prior, likelihood
        self.sizes = check_layers(latents, widths)
        depth = check_int("family.depth", depth, 1)
        if activation not in ACTIVATIONS:
            raise ConfigError(f"family.activation={activation} is unknown: choose one of {', '.join(ACTIVATIONS)}")
        self.batch_norm = bool(batch_norm)
        self.logvar_floor = None if logvar_floor is None else check_number("family.logvar_floor", logvar_floor, -math.inf)
        ins = [encoder.out_features, *widths[:-1]]  # what each block above layer 1 reads: d_(l-1)
        self.up = nn.ModuleList(Block(n_in, width, depth, activation, self.batch_norm) for n_in, width in zip(ins, widths))
        self.up_heads = nn.ModuleList(GaussianHead(width, size, self.logvar_floor) for width, size in zip(widths, self.sizes[1:]))
        pairs = zip(self.sizes, self.sizes[1:], widths)
        self.down = nn.ModuleList(TopDown(upper, lower, width, depth, activation, self.batch_norm, self.logvar_floor) for lower, upper, width in pairs)

    @classmethod
    def from_config(cls, cfg: DictConfig, shape: tuple[int, int, int]) -> "LadderModel":
        sizes = check_layers(cfg.family.latents, cfg.family.widths)
        if option(cfg, "posterior") != "gaussian":
            raise ConfigError(
                f"family=ladder takes posterior=gaussian, not posterior={option(cfg, 'posterior')}: each layer's posterior is "
                "the precision-weighted merge of two diagonal Gaussians"
            )
        parts = gaussian_parts(cfg, shape, sizes[0], sizes[-1])
        refuse_encoder_priors(cfg, parts["prior"], "ladder", "not to the top layer")
        family = {key: value for key, value in cfg.family.items() if key != "_target_"}
        return cls(**parts, **family)

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        cls.check_latent(cfg, check_layers(cfg.family.latents, cfg.family.widths))

    def bottom_up(self, x: Tensor) -> list[tuple[Tensor, Tensor]]:
        """x (B, C, H, W) -> [(mu_hat_l, logvar_hat_l) (B, D_l) each] for l = 1..L: the evidence of x for each layer."""
        d = self.encoder(x)  # (B, F): d_1
        mu, logvar = self.posterior.base(d)
        evidence = [(mu, soft_floor(logvar, self.logvar_floor))]
        for block, head in zip(self.up, self.up_heads):
            d = block(d)  # (B, width_l): d_l
            evidence.append(head(d))
        return evidence

    def draw(self, x: Tensor, y: Tensor | None = None, k: int = 1) -> Draw:
        """x (B, C, H, W) -> a Draw of K codes [z1, ..., zL] (K, B, sum of sizes) per example, drawn top-down."""
        batch = len(x)
        evidence = self.bottom_up(x)
        mu_top, logvar_top = (t.expand(k, *t.shape) for t in evidence[-1])  # (K, B, D_L)
        zs = [reparameterize(mu_top, logvar_top)]  # q(zL|x) = N(mu_hat_L, sigma_hat_L^2)
        log_qs, log_ps = [log_normal(zs[0], mu_top, logvar_top)], [self.prior.log_prob(zs[0], None)]  # (K, B) each
        for layer, (mu_hat, logvar_hat) in zip(reversed(self.down), reversed(evidence[:-1])):  # l = L-1, ..., 1
            mu_p, logvar_p = layer(zs[0])  # p(z_l|z_(l+1)), (K, B, D_l)
            mu_q, logvar_q = merge_gaussians(mu_hat, logvar_hat, mu_p, logvar_p)  # q(z_l|z_(l+1), x)
            zs.insert(0, reparameterize(mu_q, logvar_q))
            log_qs.insert(0, log_normal(zs[0], mu_q, logvar_q))
            log_ps.insert(0, log_normal(zs[0], mu_p, logvar_p))
        params = self.decoder(zs[0].flatten(0, 1))  # (K * B, C * params_per_pixel, H, W)
        x_rep = x.expand(k, *x.shape).flatten(0, 1)
        log_px_z = self.likelihood.log_prob(params, x_rep).view(k, batch)
        kl_layers = {layer_kl_name(i): (q - p).mean(dim=0) for i, (q, p) in enumerate(zip(log_qs, log_ps))}  # (B,) each
        return Draw(log_px_z, sum(log_ps), sum(log_qs), torch.cat(zs, dim=-1), logged=kl_layers, kl_layers=list(kl_layers.values()))

    def encode(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The posterior means top-down, each layer's merge fed the mean of the layer above, (B, sum of sizes).

        E[z_l|x] itself would integrate over the layers above; the means through the path are the usual stand-in.
        """
        evidence = self.bottom_up(x)
        codes = [evidence[-1][0]]
        for layer, (mu_hat, logvar_hat) in zip(reversed(self.down), reversed(evidence[:-1])):
            codes.insert(0, merge_gaussians(mu_hat, logvar_hat, *layer(codes[0]))[0])
        return torch.cat(codes, dim=-1)


def check_layers(latents, widths) -> list[int]:
    """The stochastic layer sizes, bottom first, checked with the deterministic widths between them."""
    sizes = [check_int("family.latents", size, 1) for size in latents]
    if len(sizes) < 2:
        raise ConfigError(
            f"family.latents={list(latents)} is invalid: give two or more layer sizes, bottom first, e.g. [64, 32, 16, 8, 4] "
            "(one layer is family=vae)"
        )
    widths = [check_int("family.widths", width, 1) for width in widths]
    if len(widths) != len(sizes) - 1:
        raise ConfigError(
            f"family.widths={widths} does not fit family.latents={sizes}: give one deterministic width per pair of "
            f"neighbouring layers ({len(sizes) - 1}), bottom first, e.g. [256, 128, 64, 32] for five layers"
        )
    return sizes

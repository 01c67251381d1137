"""VQ-VAE (van den Oord et al. 2017, "Neural Discrete Representation Learning"): each image becomes
`codes` discrete codes, each the nearest of `codebook_size` learned vectors in R^latent.

The encoder's features go through a linear map to `codes` vectors z_e (B, P, D); each is replaced
by its nearest codebook vector e (Eq. 1-2), and the decoder sees the straight-through estimate
z_e + sg(e - z_e), so gradients pass the quantiser unchanged (Sec. 3.2). The loss (Eq. 3) adds to
-log p(x|z_q) the codebook term ||sg(z_e) - e||^2 and the commitment term beta ||z_e - sg(e)||^2;
with `ema=true` the codebook follows exponential moving averages of its assigned vectors instead
of the codebook term (Appendix A.1). q(z|x) is a point mass on the nearest codes, so the KL is
-log p(codes): with a learned prior over codes (`code_prior=autoregressive`, a small GRU over the
P positions, trained on the detached codes) the ELBO log p(x|z_q) + log p(z_q) is a real bound on
log p(x); with `code_prior=uniform` it is not reported (see `not_applicable`).
"""

import math

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import Tensor, nn

from vae.draw import Draw
from vae.errors import ConfigError, check_int, check_number
from vae.families.base import Family, Objective, loss_not_applicable
from vae.families.parts import encoder_and_decoder, refuse_parts
from vae.metrics.latents import perplexity

NOT_APPLICABLE = {  # metric -> why a VQ-VAE has no such number
    "active_units": "codes are discrete: codebook usage (perplexity, dead_codes) measures them instead",
    "kl_per_dim": "codes are discrete: there is no Gaussian posterior to split by dimension",
}
NO_LEARNED_PRIOR = "no prior over codes is learned (family.code_prior=uniform): a bound with the uniform prior says nothing of the model"


class VectorQuantizer(nn.Module):
    """A codebook of K vectors in R^D: nearest-neighbour assignment, optionally EMA updates (Appendix A.1)."""

    def __init__(self, codebook_size: int, code_dim: int, ema: bool = False, decay: float = 0.99, eps: float = 1e-5):
        super().__init__()
        self.ema, self.decay, self.eps = ema, decay, eps
        codebook = torch.randn(codebook_size, code_dim)
        if ema:  # moved by the averages below, not by gradients
            self.register_buffer("codebook", codebook)
            self.register_buffer("cluster_size", torch.zeros(codebook_size))
            self.register_buffer("code_sum", codebook.clone())
        else:
            self.codebook = nn.Parameter(codebook)

    def forward(self, z_e: Tensor) -> tuple[Tensor, Tensor]:
        """z_e (..., D) -> (indices (...), their codebook vectors e (..., D))."""
        flat = z_e.detach().reshape(-1, z_e.shape[-1])  # (N, D)
        indices = torch.cdist(flat, self.codebook.detach()).argmin(dim=1)  # (N,) nearest code
        if self.ema and self.training and torch.is_grad_enabled():  # training steps only, never evaluation
            self.update(flat, indices)
        return indices.view(z_e.shape[:-1]), self.codebook[indices].view(z_e.shape)

    @torch.no_grad()
    def update(self, flat: Tensor, indices: Tensor) -> None:
        """The EMA step: N_k and m_k decay towards this batch's counts and sums (summed over DDP ranks)."""
        one_hot = F.one_hot(indices, len(self.codebook)).to(flat.dtype)  # (N, K)
        counts, sums = one_hot.sum(dim=0), one_hot.T @ flat  # (K,), (K, D)
        if torch.distributed.is_available() and torch.distributed.is_initialized():  # every rank: the same codebook
            torch.distributed.all_reduce(counts)
            torch.distributed.all_reduce(sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.code_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + len(self.codebook) * self.eps) * n  # Laplace: no division by 0
        self.codebook.copy_(self.code_sum / smoothed.unsqueeze(1))


class UniformCodes(nn.Module):
    """p(codes) uniform over K^P grids: log p = -P log K for every grid."""

    learned = False

    def __init__(self, codebook_size: int, codes: int):
        super().__init__()
        self.codebook_size, self.codes = codebook_size, codes
        self.register_buffer("anchor", torch.zeros(()))

    def log_prob(self, indices: Tensor) -> Tensor:
        """indices (B, P) -> (B,)"""
        return indices.new_full((len(indices),), -self.codes * math.log(self.codebook_size), dtype=torch.float32)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randint(self.codebook_size, (n, self.codes), generator=generator).to(self.anchor.device)


class AutoregressiveCodes(nn.Module):
    """p(codes) = prod_p p(c_p | c_<p): a GRU over the P positions in raster order (the paper uses a PixelCNN)."""

    learned = True

    def __init__(self, codebook_size: int, codes: int, hidden: int = 64):
        super().__init__()
        self.codebook_size, self.codes = codebook_size, codes
        self.embed = nn.Embedding(codebook_size + 1, hidden)  # index K: the start token
        self.rnn = nn.GRU(hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, codebook_size)

    def log_prob(self, indices: Tensor) -> Tensor:
        """indices (B, P) -> sum_p log p(c_p | c_<p) (B,)"""
        start = indices.new_full((len(indices), 1), self.codebook_size)
        h, _ = self.rnn(self.embed(torch.cat([start, indices[:, :-1]], dim=1)))  # (B, P, H)
        log_p = torch.log_softmax(self.out(h).float(), dim=-1)  # (B, P, K)
        return log_p.gather(-1, indices.unsqueeze(-1)).squeeze(-1).sum(dim=1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        device = self.out.weight.device
        token, state, drawn = torch.full((n, 1), self.codebook_size, device=device), None, []
        for _ in range(self.codes):
            h, state = self.rnn(self.embed(token), state)
            probs = torch.softmax(self.out(h[:, -1]).float(), dim=-1).cpu()  # (n, K)
            token = torch.multinomial(probs, 1, generator=generator).to(device)  # (n, 1)
            drawn.append(token)
        return torch.cat(drawn, dim=1)  # (n, P)


CODE_PRIORS = {"uniform": UniformCodes, "autoregressive": AutoregressiveCodes}


class CodebookUsage:
    """A VQ-VAE's test figures: how the codes of the whole split spread over the codebook (not a batch's)."""

    def __init__(self, family: "VQVAEModel"):
        self.family, self.counts = family, torch.zeros(family.codebook_size, dtype=torch.long)

    def update(self, x: Tensor, y: Tensor | None, draw: Draw) -> None:
        self.counts += self.family.code_counts(x).cpu()  # (K,)

    def result(self) -> dict:
        return {"perplexity": float(perplexity(self.counts)), "dead_codes": int((self.counts == 0).sum())}


class VQVAEModel(Family):
    """x -> encoder -> P vectors z_e -> nearest codes -> decoder -> likelihood p(x|z_q)."""

    picture_names = ("samples", "reconstructions")  # one code is P vectors: no traversal, line or manifold of it
    continuous_codes = False  # each code is one of codebook_size vectors

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        likelihood,
        latent_dim: int,
        codebook_size: int = 512,
        codes: int = 16,
        commitment: float = 0.25,
        ema: bool = True,
        decay: float = 0.99,
        code_prior: str = "autoregressive",
    ):
        super().__init__()
        self.codebook_size = check_int("family.codebook_size", codebook_size, 2)
        self.codes = check_int("family.codes", codes, 1)
        self.code_dim = check_int("latent", latent_dim, 1)
        self.commitment = check_number("family.commitment", commitment, 0.0)
        if not 0 < decay < 1:
            raise ConfigError(f"family.decay={decay} is invalid: it must lie in (0, 1), e.g. 0.99")
        if code_prior not in CODE_PRIORS:
            raise ConfigError(f"family.code_prior={code_prior} is unknown: choose one of {', '.join(CODE_PRIORS)}")
        self.encoder, self.decoder, self.likelihood = encoder, decoder, likelihood
        self.to_codes = nn.Linear(encoder.out_features, codes * latent_dim)
        self.quantizer = VectorQuantizer(codebook_size, latent_dim, ema, decay)
        self.code_prior = CODE_PRIORS[code_prior](codebook_size, codes)
        learned = self.code_prior.learned
        self.prior_name = "the learned autoregressive prior over codes" if learned else "a uniform prior over codes (not learned)"

    @classmethod
    def from_config(cls, cfg: DictConfig, shape: tuple[int, int, int]) -> "VQVAEModel":
        refuse_parts(cfg, "vqvae", "it has its own prior over codes (family.code_prior) and q(z|x) is the nearest codes")
        latent, codes = check_int("latent", cfg.latent, 1), check_int("family.codes", cfg.family.codes, 1)
        likelihood = instantiate(cfg.likelihood)
        encoder, decoder = encoder_and_decoder(cfg, shape, codes * latent, likelihood)
        return instantiate(cfg.family, encoder=encoder, decoder=decoder, likelihood=likelihood, latent_dim=latent)

    @property
    def latent_dim(self) -> int:
        return self.codes * self.code_dim

    @property
    def not_applicable(self) -> dict[str, str]:
        if self.code_prior.learned:
            return NOT_APPLICABLE | loss_not_applicable(self.likelihood)
        return NOT_APPLICABLE | {name: NO_LEARNED_PRIOR for name in ("elbo", "kl", "nll", "bpd")}

    def check_objective(self, objective: Objective) -> None:
        if objective.name != "elbo" or objective.k != 1:
            raise ConfigError(
                f"family=vqvae takes objective=elbo with objective.k=1, not objective={objective.name} objective.k={objective.k}: "
                "its q(z|x) is a point mass on the nearest codes, so every draw is the same"
            )
        if objective.needs_gaussian_posterior:
            raise ConfigError(
                f"{objective.spelled} does not fit family=vqvae: {objective.needs_gaussian_posterior}, and its q(z|x) "
                "is a point mass on the nearest codes; leave objective.gradient at its default"
            )

    def diagnostics(self) -> CodebookUsage:
        return CodebookUsage(self)

    def quantize(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, C, H, W) -> z_e (B, P, D), code indices (B, P), codebook vectors z_q (B, P, D)."""
        z_e = self.to_codes(self.encoder(x)).float().view(len(x), self.codes, self.code_dim)
        indices, z_q = self.quantizer(z_e)
        return z_e, indices, z_q

    def draw(self, x: Tensor, y: Tensor | None = None, k: int = 1) -> Draw:
        """x (B, C, H, W) -> a Draw: q(z|x) is a point mass, so the K draws are one draw repeated."""
        z_e, indices, z_q = self.quantize(x)
        z_st = z_e + (z_q - z_e).detach()  # straight through: the decoder sees z_q, gradients reach z_e
        log_px_z = self.likelihood.log_prob(self.decoder(z_st.flatten(1)), x)  # (B,)
        log_pz = self.code_prior.log_prob(indices)  # (B,); trains the prior on the detached codes
        extra = {"commitment": self.commitment * (z_e - z_q.detach()).pow(2).sum(dim=(1, 2))}  # (B,)
        if not self.quantizer.ema:
            extra["codebook"] = (z_e.detach() - z_q).pow(2).sum(dim=(1, 2))
        counts = torch.bincount(indices.flatten(), minlength=self.codebook_size)
        logged = {"batch_perplexity": perplexity(counts), "batch_codes_used": (counts > 0).sum().float()}
        repeat = (k, len(x))
        return Draw(
            log_px_z.expand(repeat), log_pz.expand(repeat), log_pz.new_zeros(repeat), z_q.flatten(1).expand(k, *z_q.flatten(1).shape),
            extra_loss=extra, logged=logged,
        )  # fmt: skip

    def code_counts(self, x: Tensor) -> Tensor:
        """How often each code is chosen for the images x (B, C, H, W): (K,)"""
        return torch.bincount(self.quantize(x)[1].flatten(), minlength=self.codebook_size)

    def encode(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The codebook vectors of x, flattened (B, P * D)."""
        return self.quantize(x)[2].flatten(1)

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.likelihood.mean(self.decoder(z))

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Codes drawn from the prior over codes, as their vectors (n, P * D)."""
        indices = self.code_prior.sample(n, generator)  # (n, P)
        return self.quantizer.codebook[indices].flatten(1)


"""The family interface: what every model family offers, and all that its callers may rely on.

A family wires nets, a posterior, a prior and a likelihood together (or whatever it needs) and is
chosen by its config's `_target_` alone: `assemble.build_model` calls the class's `from_config`.
The system, evaluation, pictures, the API and the metrics use only what `Family` declares here;
a family overrides a hook where it differs and inherits the default where it does not.

Must implement: `from_config`, `latent_dim`, `draw`, `encode`, `decode`, `sample_latents`.
Hooks with defaults: `classes` (conditional families), `continuous_codes` (false: discrete codes), `layer_sizes` and `redraw_below`
(hierarchies), `kl_per_dimension`, `diagnostics`, `not_applicable`, `picture_names`,
`prior_name`, `check_objective`, `decoder_parameters`.
"""

from typing import Protocol

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from vae.draw import Draw
from vae.metrics.latents import active_units

# the pictures of `vae.pictures` a family may ask for; the default set suits one continuous latent space
DEFAULT_PICTURES = ("samples", "manifold", "reconstructions", "traversals", "interpolations", "codes")


def layer_kl_name(layer: int) -> str:
    """The name under which a hierarchical family's Draw logs the KL of layer `layer` (0 is the bottom)."""
    return f"kl_layer{layer + 1}"


def loss_not_applicable(likelihood) -> dict[str, str]:
    """The figures a likelihood that is a loss, not a normalised density (`normalised = False`), leaves without
    meaning, each with the reason: a family with such a likelihood names them in `not_applicable`."""
    if likelihood.normalised:
        return {}
    why = "the reconstruction term is a loss (likelihood=msssim), not a normalised density p(x|z)"
    return {"elbo": f"{why}: the ELBO bounds nothing", "nll": f"{why}: there is no log p(x)", "bpd": f"{why}: no bits/dim"}


class Objective(Protocol):
    """What a family may ask of an objective when it checks that the two fit (vae.objectives)."""

    name: str
    spelled: str
    k: int
    needs_gaussian_posterior: str  # why it reads Draw.gaussian; empty: it does not
    needs_standard_normal_prior: str  # why it needs p(z) = N(0, I); empty: any prior
    needs_log_q: bool  # False: it trains a deterministic encoder (ae, rae)


class Tally(Protocol):
    """A family's own test figures, tallied batch by batch over a split: `update` each batch, then `result`."""

    def update(self, x: Tensor, y: Tensor | None, draw: Draw) -> None: ...

    def result(self) -> dict: ...


class LatentUsage:
    """The default tally of a family's test figures: active units of the codes (Burda et al. 2016, Sec. 5.2), and for a stack of layers
    the active units and mean KL of each layer; the mean KL of each dimension where it has a closed form.
    """

    def __init__(self, family: "Family"):
        self.family = family
        self.codes: list[Tensor] = []
        self.kl_dims: Tensor | None = None
        self.layer_kls: list[float] = [0.0] * len(family.layer_sizes)
        self.count = 0

    def update(self, x: Tensor, y: Tensor | None, draw: Draw) -> None:
        family = self.family
        self.codes.append(family.encode(x, y).cpu())
        kl = family.kl_per_dimension(x, y)  # (B, D) or None
        if kl is not None:
            self.kl_dims = kl.sum(dim=0) if self.kl_dims is None else self.kl_dims + kl.sum(dim=0)
        if len(family.layer_sizes) > 1:
            for i in range(len(family.layer_sizes)):
                self.layer_kls[i] += float(draw.logged[layer_kl_name(i)].sum())
        self.count += len(x)

    def result(self) -> dict:
        codes, sizes = torch.cat(self.codes), self.family.layer_sizes
        metrics: dict = {"active_units": active_units(codes)}
        if len(sizes) > 1:  # Burda et al. 2016, Table 2: the KL and active units of each stochastic layer
            for i, layer in enumerate(codes.split(sizes, dim=1)):
                metrics[layer_kl_name(i)] = self.layer_kls[i] / self.count
                metrics[f"active_units_layer{i + 1}"] = active_units(layer)
        if self.kl_dims is not None:
            metrics["kl_per_dim"] = [round(float(v), 4) for v in self.kl_dims / self.count]
        return metrics


class Family(nn.Module):
    """A model family. Shapes: x (B, C, H, W) in [0, 1]; y (B,) integer labels or None; z (N, D) codes."""

    classes: int = 0  # the labels a conditional family models log p(x|y) with (0 .. classes - 1); 0: none
    continuous_codes = True  # whether codes fill R^D (a density fitted to them can be decoded); false: discrete codes
    prior_name = "the prior p(z)"  # how pictures name what `sample_latents` draws from
    picture_names: tuple[str, ...] = DEFAULT_PICTURES  # which pictures of `vae.pictures` suit this family

    @classmethod
    def from_config(cls, cfg: DictConfig, shape: tuple[int, int, int]) -> "Family":
        """The family with its parts, from the composed config and the data's (C, H, W); refuses what does not
        fit it (a part, `latent=`) with one line naming the bad value and what is valid."""
        raise NotImplementedError

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        """Refuse, with one line, a setting a new run gives that this family would ignore (checkpoints that were
        trained are not asked again). Default: none."""

    @property
    def latent_dim(self) -> int:
        """D, the width of the codes `encode` gives and `decode` takes."""
        raise NotImplementedError

    @property
    def layer_sizes(self) -> list[int]:
        """The widths of the stochastic layers inside a code, bottom (next to x) first; they sum to D."""
        return [self.latent_dim]

    @property
    def not_applicable(self) -> dict[str, str]:
        """Figures (metric names) this family has no meaning for, each with the reason: left out, not printed wrong."""
        return {}

    def check_objective(self, objective: Objective) -> None:
        """Refuse, with one line, an objective this family cannot be trained with. Default: every one fits."""

    def draw(self, x: Tensor, y: Tensor | None = None, k: int = 1) -> Draw:
        """K draws of q(z|x) per example with their densities: what objectives and log p(x) reduce."""
        raise NotImplementedError

    def encode(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """x (B, C, H, W) -> the codes (B, D), float32: a posterior mean or the nearest codes."""
        raise NotImplementedError

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """z (N, D) -> the mean images E[x|z] (N, C, H, W) in [0, 1]."""
        raise NotImplementedError

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n draws of the prior (n, D) on the family's device; `generator` makes them repeatable."""
        raise NotImplementedError

    def decoder_parameters(self) -> list[nn.Parameter]:
        """theta of p(x|z), the generative net's weights: what RAE's L2 regulariser weighs (objective=rae). Default:
        none (the families that take objective=rae override it)."""
        return []

    def labels(self, n: int, device: torch.device) -> Tensor | None:
        """Labels for n images when none are given: the classes in turn (0, 1, ..., 0, 1, ...), or None."""
        return torch.arange(n, device=device) % self.classes if self.classes else None

    def sample(self, n: int, y: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """n images (n, C, H, W) decoded from prior draws; a conditional family cycles its classes without y."""
        z = self.sample_latents(n, generator)
        return self.decode(z, self.labels(n, z.device) if y is None else y)

    def redraw_below(self, z: Tensor, layer: int, generator: torch.Generator | None = None) -> Tensor:
        """Codes (N, D) that keep the layers from `layer` up of z and draw those below anew from the generative
        model given them; with one layer there is nothing below. The hierarchy picture's only need."""
        return z

    def kl_per_dimension(self, x: Tensor, y: Tensor | None = None) -> Tensor | None:
        """KL(q(z_d|x) || p(z_d)) of each dimension (B, D) where it has a closed form, else None."""
        return None

    def diagnostics(self) -> Tally:
        """A fresh tally of this family's own test figures: by default `LatentUsage`; a VQ-VAE counts codes."""
        return LatentUsage(self)

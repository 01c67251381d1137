"""Where sample pictures and sample-quality metrics draw their codes from: `sampler=prior|gmm|two_stage`.

`prior` (the default) draws from the model's own p(z), as training's pictures do. The others are fitted
after training to the codes E[z|x] of the training split (ex-post density estimation): `gmm` a Gaussian
mixture (Ghosh et al. 2020), `two_stage` a second small VAE (Dai & Wipf 2019). Each works through the
family interface alone (`encode`, `decode`, `sample_latents`, `latent_dim`, `classes`, `continuous_codes`);
decoding stays the family's own. A conditional family's codes are pooled over classes, since its prior
p(z) is one for every label, and its samples are decoded with the labels in turn, as `Family.sample` does.
"""

import logging
import time
from collections.abc import Iterable

import torch
from torch import Tensor

from vae.errors import ConfigError

log = logging.getLogger(__name__)


class Sampler:
    """What callers may rely on: `name`, `fit(family, batches)`, `sample_latents`, `source` and `suffix`."""

    name = "prior"

    def fit(self, family, batches: Iterable) -> "Sampler":
        """Get ready to draw codes for `family` (a `vae.families.base.Family`) from the training batches (x, y)."""
        self.family = family
        return self

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n codes (n, D), float32 on the family's device; `generator` (a CPU one) makes them repeatable."""
        return self.family.sample_latents(n, generator)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n images (n, C, H, W) in [0, 1], the decoder's mean (a conditional family's classes in turn)."""
        z = self.sample_latents(n, generator)  # (n, D)
        return self.family.decode(z, self.family.labels(n, z.device))

    @property
    def source(self) -> str:
        """What the codes are drawn from, for picture titles."""
        return self.family.prior_name

    @property
    def suffix(self) -> str:
        """What results and picture files of this sampler add to their names: nothing for the prior, `_gmm`, ..."""
        return "" if self.name == "prior" else f"_{self.name}"


class PriorSampler(Sampler):
    """`sampler=prior`: the model's own prior p(z), fitted during training (the default)."""


class FittedSampler(Sampler):
    """A density fitted to the training codes: subclasses give `fit_codes` and `draw`."""

    def check(self, family) -> None:
        """Refuse, with one line, a family whose codes this sampler cannot model."""
        if not family.continuous_codes:
            raise ConfigError(
                f"sampler={self.name} fits a density to continuous codes, but this model's codes are discrete "
                f"({type(family).__name__}, as family=vqvae's): use sampler=prior, its own prior over codes"
            )

    @torch.no_grad()
    def fit(self, family, batches: Iterable) -> "Sampler":
        self.check(family)
        self.family = family
        codes = [family.encode(x, y if family.classes else None).float() for x, y in batches]  # each (B, D)
        if not codes:
            raise ConfigError(f"sampler={self.name} needs the training split's codes, but the train split is empty")
        codes = torch.cat(codes)  # (N, D)
        self.device = codes.device
        self.fit_codes(codes)
        return self

    def fit_codes(self, codes: Tensor) -> None:
        """Fit the density to the codes (N, D) on the family's device."""
        raise NotImplementedError

    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n codes (n, D) drawn from the fitted density."""
        raise NotImplementedError

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.draw(n, generator).to(self.device, torch.float32)


def fitted_sampler(sampler: Sampler | None, system, datamodule) -> Sampler:
    """`sampler` (default: the prior) fitted to the training split of `datamodule` (a `vae.data.Data`) for the
    system's model, in eval mode (batch norm: the running statistics)."""
    sampler = sampler or PriorSampler()
    if isinstance(sampler, FittedSampler):
        sampler.check(system.model)
        system.eval()
        start = time.perf_counter()
        sampler.fit(system.model, datamodule.eval_batches("train", system.device))
        log.info(
            "sampler=%s: fitted to the training split's codes in %.1f s", sampler.name, time.perf_counter() - start
        )
        return sampler
    return sampler.fit(system.model, ())

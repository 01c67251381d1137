"""The Lightning system: encoder, decoder and the ELBO loss, with one shared step for train/val/test."""

import lightning as L
import torch
from torch import Tensor, nn

from vae.elbo import bernoulli_log_likelihood, gaussian_kl, gaussian_log_likelihood, kl_penalty, reparameterize
from vae.errors import TrainingDiverged, divergence_message
from vae.models import split_params


class VAE(L.LightningModule):
    """q(z|x) = N(mu, diag(exp(logvar))) from the encoder, p(x|z) from the decoder, prior N(0, I).

    loss = -E_q[log p(x|z)] + beta * KL(q(z|x) || p(z)), in nats per example. `elbo` is always
    the beta = 1 value, so runs with different beta schedules stay comparable.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        beta_schedule,
        likelihood: str = "bernoulli",
        lr: float = 1e-3,
        latent_dim: int = 20,
        config: dict | None = None,
    ):
        super().__init__()
        # `config` (the composed Hydra config) rides in the checkpoint so eval can rebuild the nets.
        self.save_hyperparameters(ignore=["encoder", "decoder", "beta_schedule"])
        self.encoder, self.decoder, self.beta_schedule = encoder, decoder, beta_schedule
        self.likelihood, self.lr, self.latent_dim = likelihood, lr, latent_dim

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, C, H, W) -> decoder params (B, C*k, H, W), mu (B, D), logvar (B, D)."""
        mu, logvar = self.encoder(x)
        z = reparameterize(mu.float(), logvar.float())
        return self.decoder(z), mu, logvar

    def log_likelihood(self, params: Tensor, x: Tensor) -> Tensor:
        """log p(x|z) (B,), computed in float32 whatever the training precision."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(params.float(), x)
        mean, logvar = split_params(params.float(), 2)
        return gaussian_log_likelihood(mean, logvar.clamp(-10.0, 5.0), x)

    def mean_image(self, params: Tensor) -> Tensor:
        """E[x|z] (B, C, H, W) in [0, 1], for pictures."""
        if self.likelihood == "bernoulli":
            return torch.sigmoid(params.float())
        return split_params(params.float(), 2)[0].clamp(0.0, 1.0)

    def decode(self, z: Tensor) -> Tensor:
        """z (B, D) -> E[x|z] (B, C, H, W) in [0, 1]."""
        return self.mean_image(self.decoder(z))

    def encode(self, x: Tensor) -> Tensor:
        """x (B, C, H, W) -> the posterior mean (B, D), float32: the code pictures and metrics use."""
        return self.encoder(x)[0].float()

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n draws (n, D) of the prior p(z), on the system's device."""
        return torch.randn(n, self.latent_dim, generator=generator).to(self.device)

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, _ = batch
        params, mu, logvar = self(x)
        rec = -self.log_likelihood(params, x)  # (B,) nats
        kl = gaussian_kl(mu.float(), logvar.float())  # (B,) nats
        beta = self.beta_schedule.beta(self.global_step)
        capacity = self.beta_schedule.capacity(self.global_step)
        loss = (rec + kl_penalty(kl, beta, capacity)).mean()
        on_step = stage == "train"  # train per step; val and test as epoch means, reduced across ranks
        if on_step:
            self.check_finite(loss, rec, kl, beta, x)
            if not self.trainer._logger_connector.should_update_logs:
                return loss  # step metrics are written every log_every_n_steps: in between, skip building them
        metrics = {"loss": loss, "rec": rec.mean(), "kl": kl.mean(), "elbo": -(rec + kl).mean(), "beta": beta}
        if capacity is not None:
            metrics["capacity"] = capacity
        for name, value in metrics.items():
            self.log(
                f"{stage}/{name}",
                value,
                on_step=on_step,
                on_epoch=not on_step,
                prog_bar=name == "elbo",
                sync_dist=not on_step,
                batch_size=len(x),
            )
        return loss

    def check_finite(self, loss: Tensor, rec: Tensor, kl: Tensor, beta: float, x: Tensor) -> None:
        """Stop before a non-finite loss reaches the weights (one sync per step), naming the term that broke.

        loss: (); rec, kl: (B,)
        """
        if not torch.isfinite(loss):
            terms = {"rec": rec.mean(), "kl": kl.mean(), "loss": loss}
            term = next(name for name, value in terms.items() if not torch.isfinite(value))
            inputs_finite = bool(torch.isfinite(x).all())
            raise TrainingDiverged(divergence_message(self.global_step, term, terms[term].item(), self.lr, beta, inputs_finite))

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)

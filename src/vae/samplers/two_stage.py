"""`sampler=two_stage`: a second VAE fitted to the training codes z, then u ~ N(0, I) -> its decoder -> z ->
the model's decoder (Dai & Wipf 2019, "Diagnosing and Enhancing VAE Models", Sec. 4).

The second stage has as many latent dimensions as z (the paper's choice) and a Gaussian decoder
p(z|u) = N(z; f(u), gamma I) whose scalar gamma is learned, as in the paper: as gamma falls the second
stage's aggregate posterior q(u) nears N(0, I), which is what its sampling relies on. A draw is one of the
second stage's own p(z) = int N(z; f(u), gamma I) N(u; 0, I) du: f(u) + sqrt(gamma) eps, which keeps the
codes' spread where a short fit has not yet driven gamma to 0 (with gamma -> 0 it is the mean f(u) the paper
decodes). The paper's MLPs are 1024 wide; the default here is smaller for a CPU.
"""

import math

import torch
from torch import Tensor, nn

from vae.errors import ConfigError, check_int, check_number
from vae.nets.mlp import ACTIVATIONS, mlp
from vae.samplers import FittedSampler


class SecondStage(nn.Module):
    """A VAE on codes: q(u|z) = N(mu, diag sigma^2) and p(z|u) = N(f(u), gamma I), u and z both (N, D)."""

    def __init__(self, dim: int, hidden: list[int], activation: str = "relu"):
        super().__init__()
        self.encoder = nn.Sequential(mlp([dim, *hidden], activation), nn.Linear(hidden[-1], 2 * dim))
        self.decoder = nn.Sequential(mlp([dim, *hidden], activation), nn.Linear(hidden[-1], dim))
        self.log_gamma = nn.Parameter(torch.zeros(()))  # learned, shared by every dimension (Sec. 4)

    def loss(self, z: Tensor) -> Tensor:
        """-ELBO per code, nats, (N,): ||z - f(u)||^2 / (2 gamma) + D/2 log(2 pi gamma) + KL(q(u|z) || N(0, I))."""
        mu, logvar = self.encoder(z).chunk(2, dim=1)  # (N, D) each
        u = mu + (0.5 * logvar).exp() * torch.randn_like(mu)  # reparameterised (N, D)
        rec = (z - self.decoder(u)).pow(2).sum(1) / (2 * self.log_gamma.exp())  # (N,)
        rec = rec + 0.5 * z.shape[1] * (math.log(2 * math.pi) + self.log_gamma)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)  # (N,), closed form (Kingma & Welling, App. B)
        return rec + kl


def fit_second_stage(
    codes: Tensor, hidden: list[int], steps: int, batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
    activation: str = "relu",
) -> tuple[SecondStage, list[float]]:  # fmt: skip
    """Train a SecondStage on codes (N, D) with Adam for `steps` minibatch steps, repeatably from `seed`.
    Returns it in eval mode with its loss per step."""
    devices = [codes.device] if codes.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # the seed fixes init and noise without touching the caller's RNG
        torch.manual_seed(seed)
        model = SecondStage(codes.shape[1], hidden, activation).to(codes.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        losses = []
        with torch.enable_grad():
            for _ in range(steps):
                batch = codes[torch.randint(len(codes), (min(batch_size, len(codes)),), device=codes.device)]
                loss = model.loss(batch).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
    return model.eval(), losses


class TwoStageSampler(FittedSampler):
    """`sampler=two_stage`: a second VAE trained for `steps` on the training codes, sampled through its decoder."""

    name = "two_stage"

    def __init__(
        self, hidden: list[int] = (256, 256), steps: int = 3000, batch_size: int = 128, lr: float = 1e-3,
        activation: str = "relu", seed: int = 0,
    ):  # fmt: skip
        self.hidden = [check_int("sampler.hidden", width, 1) for width in hidden]
        self.steps = check_int("sampler.steps", steps, 1)
        self.batch_size = check_int("sampler.batch_size", batch_size, 1)
        self.lr = check_number("sampler.lr", lr, 0.0)
        self.activation, self.seed = activation, check_int("seed", seed, 0)
        if activation not in ACTIVATIONS:
            raise ConfigError(f"sampler.activation={activation} is unknown: choose one of {', '.join(ACTIVATIONS)}")

    @property
    def source(self) -> str:
        return f"a second-stage VAE fitted to the training codes ({self.steps} steps)"

    def fit_codes(self, codes: Tensor) -> None:
        self.dim = codes.shape[1]
        self.model, self.losses = fit_second_stage(
            codes.float(), self.hidden, self.steps, self.batch_size, self.lr, self.seed, self.activation
        )

    @torch.no_grad()
    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        u, eps = torch.randn(2, n, self.dim, generator=generator)  # (n, D) each, on the CPU: a CPU generator fixes them
        device = self.model.log_gamma.device
        return self.model.decoder(u.to(device)) + (0.5 * self.model.log_gamma).exp() * eps.to(device)  # (n, D)

"""Pictures of a VAE, each an image tensor (C, H, W) in [0, 1] ready for a PNG or a logger.

Reconstructions (inputs above outputs), samples from the prior, latent traversals,
interpolations between test images, and for a 2-D latent space the decoded manifold
(Kingma & Welling 2014, Fig. 4) and a scatter of test codes coloured by label. The
`*_codes` functions are the pure geometry in latent space; the rest decode it.
"""

from pathlib import Path

import torch
from torch import Tensor
from torch.distributions import Normal
from torchvision.utils import make_grid, save_image

TRAVERSAL_SPAN = 3.0  # traversals sweep each dimension over [-3, 3], +-3 standard deviations of the N(0, 1) prior


def traversal_codes(mu: Tensor, dims: int, steps: int, span: float = TRAVERSAL_SPAN) -> Tensor:
    """Row d sets dimension d to each of `steps` values in [-span, span]; the others stay at `mu`.

    mu: (D,) -> (dims * steps, D)
    """
    values = torch.linspace(-span, span, steps, device=mu.device)  # (steps,)
    z = mu.repeat(dims, steps, 1)  # (dims, steps, D)
    for d in range(dims):
        z[d, :, d] = values
    return z.flatten(0, 1)


def interpolation_codes(mu_a: Tensor, mu_b: Tensor, steps: int) -> Tensor:
    """Straight lines from each code in mu_a to its partner in mu_b, ends included.

    mu_a, mu_b: (P, D) -> (P * steps, D)
    """
    t = torch.linspace(0.0, 1.0, steps, device=mu_a.device).view(1, steps, 1)
    return (mu_a.unsqueeze(1) * (1 - t) + mu_b.unsqueeze(1) * t).flatten(0, 1)


def manifold_codes(n: int) -> Tensor:
    """An n x n grid of the 2-D prior's quantiles, (i + 0.5) / n through the inverse Gaussian CDF
    (Kingma & Welling 2014, Fig. 4). Row-major; z_1 grows left to right, z_2 bottom to top, as on a plot.

    -> (n * n, 2)
    """
    q = Normal(0.0, 1.0).icdf((torch.arange(n) + 0.5) / n)  # (n,) increasing
    z1, z2 = torch.meshgrid(q, q.flip(0), indexing="xy")  # (n, n) each: columns vary z1, rows z2
    return torch.stack([z1.flatten(), z2.flatten()], dim=1)


def encode_mean(system, x: Tensor) -> Tensor:
    """E_q[z|x], the code pictures are drawn from. x: (N, C, H, W) -> (N, D)"""
    return system.encode(x)


@torch.no_grad()
def reconstructions(system, x: Tensor) -> Tensor:
    """Inputs (top row) above their reconstructions from the posterior mean (bottom row). x: (N, C, H, W)"""
    return make_grid(torch.cat([x, system.decode(encode_mean(system, x))]), nrow=len(x))


@torch.no_grad()
def prior_samples(system, z: Tensor) -> Tensor:
    """Decoded draws of the prior, in a square grid. z: (N, D), fixed by the caller so pictures stay comparable."""
    return make_grid(system.decode(z), nrow=max(1, round(len(z) ** 0.5)))


@torch.no_grad()
def traversals(system, x: Tensor, steps: int = 9, max_dims: int = 32) -> Tensor:
    """One row per latent dimension (the first `max_dims`), swept over the prior's range while the
    others stay at x's code. x: (1, C, H, W)"""
    mu = encode_mean(system, x)[0]  # (D,)
    return make_grid(system.decode(traversal_codes(mu, min(len(mu), max_dims), steps)), nrow=steps)


@torch.no_grad()
def interpolations(system, x_a: Tensor, x_b: Tensor, steps: int = 10) -> Tensor:
    """One row per pair, decoding the straight line between the two codes. x_a, x_b: (P, C, H, W)"""
    z = interpolation_codes(encode_mean(system, x_a), encode_mean(system, x_b), steps)
    return make_grid(system.decode(z), nrow=steps)


@torch.no_grad()
def manifold(system, n: int = 20) -> Tensor:
    """The decoded n x n grid of prior quantiles of a 2-D latent space."""
    return make_grid(system.decode(manifold_codes(n).to(system.device)), nrow=n, padding=0)


def code_scatter(mu: Tensor, labels: Tensor) -> Tensor:
    """A scatter plot of 2-D codes coloured by label, as an RGB image. mu: (N, 2), labels: (N,) -> (3, H, W)"""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 4.5), dpi=100)  # no pyplot: no global backend or figure state
    canvas, ax = FigureCanvasAgg(fig), fig.subplots()
    points = ax.scatter(mu[:, 0].cpu(), mu[:, 1].cpu(), c=labels.cpu(), cmap="tab10", s=6, alpha=0.8)
    fig.colorbar(points, ax=ax, label="label")
    ax.set(xlabel="$z_1$", ylabel="$z_2$", title="test codes E[z|x]")
    fig.tight_layout()
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())  # (H, W, 4) uint8
    return torch.from_numpy(rgba[..., :3].copy()).permute(2, 0, 1).float() / 255


@torch.no_grad()
def draw_all(system, x: Tensor | None, labels: Tensor | None, z: Tensor, n_images: int = 8) -> dict[str, Tensor]:
    """Every picture of `system` from test images x (N, C, H, W) with labels (N,) and prior draws z (M, D).

    The first `n_images` are reconstructed, the first is traversed, and the first half of
    them is interpolated to the second half; with D = 2, all N codes are scattered. Without
    images (x None), only the pictures of the prior.
    """
    pictures = {"samples": prior_samples(system, z)}
    if system.latent_dim == 2:
        pictures["manifold"] = manifold(system)
    if x is None:
        return pictures
    shown = x[:n_images]
    half = max(1, len(shown) // 2)
    pictures["reconstructions"] = reconstructions(system, shown)
    pictures["traversals"] = traversals(system, shown[:1])
    pictures["interpolations"] = interpolations(system, shown[:half], shown[-half:])
    if system.latent_dim == 2:
        pictures["codes"] = code_scatter(encode_mean(system, x), labels)
    return pictures


def save_pictures(pictures: dict[str, Tensor], out_dir: Path, suffix: str = "") -> list[Path]:
    """Each picture as out_dir/<name><suffix>.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, image in pictures.items():
        paths.append(out_dir / f"{name}{suffix}.png")
        save_image(image, paths[-1])
    return paths


def draw_checkpoint(cfg) -> list[Path]:
    """`src/sample.py`: load a checkpoint safely and save its pictures (default: <run folder>/samples/)."""
    import logging

    from hydra.utils import instantiate

    from vae.build import load_system
    from vae.errors import ConfigError, check_int
    from vae.evaluation import pick_device, run_dir_of

    log = logging.getLogger(__name__)
    if not cfg.get("ckpt_path"):
        raise ConfigError("ckpt_path is required: give a .ckpt file, e.g. ckpt_path=<run folder>/checkpoints/best.ckpt")
    n = check_int("n", cfg.n, 1)
    ckpt_path = Path(cfg.ckpt_path).expanduser()
    system, train_cfg = load_system(ckpt_path)
    system.to(pick_device(cfg.device))
    if cfg.get("data_dir"):
        train_cfg.data.root = cfg.data_dir
    x = labels = None
    try:
        data = instantiate(train_cfg.data)
        data.setup("test")
        images, labels = data.splits["test"]
        x, labels = images[: max(cfg.n_images, cfg.n_codes)].to(system.device).float() / 255, labels[: cfg.n_codes]
    except ConfigError as err:
        log.warning("No test images (%s): drawing the prior's pictures only", err)
    z = system.sample_latents(n, torch.Generator().manual_seed(cfg.seed))
    out_dir = Path(cfg.out_dir) if cfg.get("out_dir") else run_dir_of(ckpt_path.resolve()) / "samples"
    paths = save_pictures(draw_all(system, x, labels, z, cfg.n_images), out_dir)
    log.info("Written: %s", ", ".join(str(p) for p in paths))
    return paths

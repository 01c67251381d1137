"""Pictures of a VAE, each an image tensor (C, H, W) in [0, 1] ready for a PNG or a logger.

Reconstructions (inputs above outputs), samples from the prior, latent traversals of the most
used dimensions, interpolations between test images, and for a 2-D latent space the decoded
manifold (Kingma & Welling 2014, Fig. 4) and a scatter of test codes coloured by label; per
class for a conditional family, and what each layer holds for a hierarchy. The `*_codes` functions
are the pure geometry in latent space; `reconstructions` ... `manifold` decode it into bare grids;
`draw_all` frames each grid as a labelled figure (`vae.figures`). Which pictures a model gets is
its family's choice (`Family.picture_names`), and each is drawn through the family interface alone.
"""

from pathlib import Path

import torch
from torch import Tensor
from torch.distributions import Normal
from torchvision.utils import make_grid, save_image

from vae.figures import labelled_grid, scatter_by_label
from vae.metrics.latents import activity

TRAVERSAL_SPAN = 3.0  # traversals sweep each dimension over [-3, 3], +-3 standard deviations of the N(0, 1) prior
TRAVERSAL_DIMS = 10  # rows of the traversal picture: the most used dimensions


def traversal_codes(mu: Tensor, dims: int | list[int], steps: int, span: float = TRAVERSAL_SPAN) -> Tensor:
    """Row i sets dimension dims[i] (or i, for an int) to each of `steps` values in [-span, span]; the
    others stay at `mu`.

    mu: (D,) -> (len(dims) * steps, D)
    """
    dims = list(range(dims)) if isinstance(dims, int) else list(dims)
    values = torch.linspace(-span, span, steps, device=mu.device)  # (steps,)
    z = mu.repeat(len(dims), steps, 1)  # (rows, steps, D)
    for row, d in enumerate(dims):
        z[row, :, d] = values
    return z.flatten(0, 1)


def most_used_dimensions(usage: Tensor, k: int) -> list[int]:
    """The k dimensions of highest usage (activity or KL), highest first; ties keep index order. usage: (D,)"""
    order = sorted(range(len(usage)), key=lambda d: (-float(usage[d]), d))
    return order[:k]


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
    """Decoded draws of the prior, in a square grid (a conditional family's classes in turn). z: (N, D), fixed by
    the caller so pictures stay comparable."""
    return make_grid(system.decode(z, system.model.labels(len(z), z.device)), nrow=max(1, round(len(z) ** 0.5)))


@torch.no_grad()
def traversals(system, x: Tensor, dims: int | list[int], steps: int = 9) -> Tensor:
    """One row per latent dimension in `dims` (an int: the first that many), swept over the prior's range
    while the others stay at x's code. x: (1, C, H, W)"""
    mu = encode_mean(system, x)[0]  # (D,)
    return make_grid(system.decode(traversal_codes(mu, dims, steps)), nrow=steps)


@torch.no_grad()
def interpolations(system, x_a: Tensor, x_b: Tensor, steps: int = 10) -> Tensor:
    """One row per pair, decoding the straight line between the two codes. x_a, x_b: (P, C, H, W)"""
    z = interpolation_codes(encode_mean(system, x_a), encode_mean(system, x_b), steps)
    return make_grid(system.decode(z), nrow=steps)


@torch.no_grad()
def manifold(system, n: int = 20) -> Tensor:
    """The decoded n x n grid of prior quantiles of a 2-D latent space."""
    return make_grid(system.decode(manifold_codes(n).to(system.device)), nrow=n, padding=0)


def code_scatter(mu: Tensor, labels: Tensor, when: str = "") -> Tensor:
    """A scatter plot of 2-D codes coloured by label, with a legend, as an RGB image. mu: (N, 2), labels: (N,)
    or factor labels (N, K) (data=shapes), coloured by the first factor."""
    labels = labels[:, 0] if labels.ndim == 2 else labels
    return scatter_by_label(mu, labels, title=f"Test codes E[z|x] by label{when}")


@torch.no_grad()
def draw_all(
    system, x: Tensor | None, labels: Tensor | None, z: Tensor, n_images: int = 8, when: str = "", label: int | None = None,
    source: str | None = None,
) -> dict[str, Tensor]:
    """The pictures the model's family asks for (`picture_names`), labelled, from test images x (N, C, H, W) with
    labels (N,) and prior draws z (M, D).

    The first `n_images` are reconstructed, the first is traversed along the TRAVERSAL_DIMS dimensions
    whose posterior mean varies most over all N images (`vae.metrics.latents.activity`), and the first half
    is interpolated to the second half; with D = 2, the manifold is decoded and all N codes are scattered.
    A conditional family's rows of classes, samples of `label` (when given); a hierarchy's layers. Without
    images (x None), only the pictures of the prior. `when` is each title's second line, e.g. "epoch 3, step 120";
    `source` what z was drawn from (default: the family's `prior_name`; sample.py's sampler= names its own).
    """
    model = system.model
    names, when = model.picture_names, f"\n{when}" if when else ""
    n = len(z)
    cols = max(1, round(n**0.5))
    pictures = {}
    if "samples" in names:
        pictures["samples"] = labelled_grid(prior_samples(system, z), -(-n // cols), cols, f"Samples from {source or model.prior_name}{when}")
    if "class_samples" in names:
        pictures["class_samples"] = class_samples_figure(system, z, when)
    if "label_samples" in names and label is not None:
        grid = make_grid(system.decode(z, torch.full((n,), label, device=z.device)), nrow=cols)
        pictures[f"samples_label{label}"] = labelled_grid(grid, -(-n // cols), cols, f"Samples of label y={label}{when}")
    if "manifold" in names and system.latent_dim == 2:
        pictures["manifold"] = manifold_figure(system, when)
    if "hierarchy" in names:
        pictures["hierarchy"] = hierarchy_figure(system, when)
    if x is None:
        return pictures
    shown = x[:n_images]
    if "reconstructions" in names:
        y = labels[:n_images].to(x.device) if model.classes else None
        pictures["reconstructions"] = reconstruction_figure(system, shown, when, y)
    if "traversals" in names:
        pictures["traversals"] = traversal_figure(system, shown[:1], *dimension_usage(system, x, encode_mean(system, x)), when)
    if "interpolations" in names:
        pictures["interpolations"] = interpolation_figure(system, shown, when)
    if "codes" in names and system.latent_dim == 2:
        pictures["codes"] = code_scatter(encode_mean(system, x), labels[: len(x)], when)
    return pictures


def interpolation_figure(system, shown: Tensor, when: str, steps: int = 10) -> Tensor:
    """The first half of `shown` (P, C, H, W) interpolated to the second half, one labelled row per pair."""
    half = max(1, len(shown) // 2)
    grid = interpolations(system, shown[:half], shown[-half:], steps)
    return labelled_grid(
        grid, half, steps, f"Interpolations between the codes of two test images{when}",
        row_labels=[f"pair {i + 1}" for i in range(half)], col_labels=[f"{t:.2g}" for t in torch.linspace(0, 1, steps).tolist()],
        xlabel="t: z = (1 - t) E[z|x_a] + t E[z|x_b]",
    )  # fmt: skip


def reconstruction_figure(system, x: Tensor, when: str, y: Tensor | None = None) -> Tensor:
    """Inputs above their reconstructions, labelled (y: the labels a conditional family decodes with)."""
    grid = make_grid(torch.cat([x, system.decode(system.encode(x, y), y)]), nrow=len(x))
    row_labels = ["input", "reconstruction"]
    col_labels = None if y is None else [f"y={int(v)}" for v in y]
    return labelled_grid(grid, 2, len(x), f"Reconstructions of test images{when}", row_labels=row_labels, col_labels=col_labels)


def class_samples(system, z: Tensor, classes: int) -> Tensor:
    """A grid with one row per class: row c decodes the same draws z (M, D) with label c, so a column keeps its style."""
    labels = torch.arange(classes, device=z.device).repeat_interleave(len(z))  # (classes * M,)
    return make_grid(system.decode(z.repeat(classes, 1), labels), nrow=len(z))


def class_samples_figure(system, z: Tensor, when: str) -> Tensor:
    """A row of the same prior draws per class of a conditional family, labelled."""
    classes, cols = system.model.classes, min(len(z), 10)
    return labelled_grid(
        class_samples(system, z[:cols], classes), classes, cols, f"Samples p(x|z, y), one row per class y, z fixed down each column{when}",
        row_labels=[f"y={c}" for c in range(classes)], col_labels=[f"z{i + 1}" for i in range(cols)],
    )  # fmt: skip


@torch.no_grad()
def hierarchy_figure(system, when: str = "", rows: int = 8, cols: int = 8, seed: int = 0) -> Tensor:
    """What each layer of a stack holds: row r fixes one draw of the top layer, columns draw the layers below it
    (`Family.redraw_below`: any hierarchical family)."""
    model = system.model
    generator = torch.Generator().manual_seed(seed)
    top = len(model.layer_sizes) - 1
    z = model.sample_latents(rows, generator).repeat_interleave(cols, dim=0)  # (rows * cols, D), rows repeated
    grid = make_grid(system.decode(model.redraw_below(z, top, generator)), nrow=cols)
    return labelled_grid(grid, rows, cols, f"Top layer fixed along each row, the layers below drawn anew{when}",
                         row_labels=[f"z{len(model.layer_sizes)} #{r + 1}" for r in range(rows)])  # fmt: skip


def dimension_usage(system, x: Tensor, mu: Tensor) -> tuple[Tensor, str]:
    """How much each latent dimension is used, (D,), and the measure's name: the mean KL(q(z_d|x) || N(0, 1))
    over the test images where it has a closed form (a Gaussian posterior against N(0, I)), else the
    activity Var_x E[z_d|x] (Burda et al. 2016, Sec. 5.2)."""
    kl = system.model.kl_per_dimension(x)  # (N, D) or None
    if kl is not None:
        return kl.mean(dim=0), "KL"
    return activity(mu), "var"


USAGE_MEANING = {"KL": "KL: mean KL(q(z_d|x) || N(0,1)), nats", "var": "var: Var_x E[z_d|x]"}


def traversal_figure(system, x: Tensor, usage: Tensor, measure: str = "var", when: str = "", steps: int = 9) -> Tensor:
    """Traversals of x (1, C, H, W) along the most used dimensions, sorted and labelled by `usage` (D,),
    `measure` naming it ("KL" or "var", see `dimension_usage`)."""
    dims = most_used_dimensions(usage, TRAVERSAL_DIMS)
    values = torch.linspace(-TRAVERSAL_SPAN, TRAVERSAL_SPAN, steps).tolist()
    title = f"Traversals of a test image: the {len(dims)} most used of {len(usage)} dimensions{when}"
    return labelled_grid(
        traversals(system, x, dims, steps), len(dims), steps, title,
        row_labels=[f"z{d}  {measure} {float(usage[d]):.2f}" for d in dims], col_labels=[f"{v:g}" for v in values],
        xlabel=f"z_d (others at the image's code); {USAGE_MEANING[measure]}",
    )  # fmt: skip


def manifold_figure(system, when: str = "", n: int = 20) -> Tensor:
    """The decoded manifold with its axes: z_1 left to right, z_2 bottom to top, ticks at prior quantiles."""
    q = manifold_codes(n)[:n, 0].tolist()  # z_1 along the first row, increasing
    every = max(1, n // 5)
    x_labels = [f"{v:.2f}" if i % every == 0 else "" for i, v in enumerate(q)]
    y_labels = [f"{v:.2f}" if i % every == 0 else "" for i, v in enumerate(reversed(q))]  # z_2 falls down the rows
    return labelled_grid(manifold(system, n), n, n, f"Decoded manifold at the prior's quantiles{when}",
                         row_labels=y_labels, col_labels=x_labels, xlabel="$z_1$", ylabel="$z_2$", pad=0)  # fmt: skip


def fixed_test_images(datamodule, n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """The first n test images, the same at every call (so pictures stay comparable), as floats in [0, 1] on
    `device`, (n, C, H, W), with their labels (n,) or (n, K). datamodule: a `vae.data.Data`."""
    x, labels = datamodule.first_images("test", n)
    return x.to(device), labels[: len(x)]


def save_pictures(pictures: dict[str, Tensor], out_dir: Path, suffix: str = "") -> list[Path]:
    """Each picture as out_dir/<name><suffix>.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, image in pictures.items():
        paths.append(out_dir / f"{name}{suffix}.png")
        save_image(image, paths[-1])
    return paths

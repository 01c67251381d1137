"""Training curves of a run folder, drawn from its metrics.csv: the loss, the ELBO's terms and beta against
the step, and the KL of each latent dimension from results.json.

`draw_curves(run_dir)` writes curves.png and kl_per_dim.png; `train()` calls it at the end of a run
(through `vae.report`), and `python -m vae.report <run folder>` redraws them for any run.
"""

import csv
import math
from pathlib import Path

from matplotlib.figure import Figure

PANELS = {  # panel title: the metrics drawn in it
    "loss (what was minimised)": ["train/loss", "val/loss"],
    "reconstruction -E_q[log p(x|z)]": ["train/rec", "val/rec"],
    "KL(q(z|x) || p(z))": ["train/kl", "val/kl"],
    "beta": ["train/beta"],
}


def read_metrics(path: Path) -> dict[str, list[tuple[int, float]]]:
    """metrics.csv as {metric: [(step, value), ...]} in file order, empty cells and non-numbers left out."""
    series: dict[str, list[tuple[int, float]]] = {}
    with open(path, newline="") as file:
        for row in csv.DictReader(file):
            step = int(float(row["step"]))
            for name, cell in row.items():
                if name in ("epoch", "step") or not cell:
                    continue
                try:
                    value = float(cell)
                except ValueError:
                    continue
                if math.isfinite(value):
                    series.setdefault(name, []).append((step, value))
    return series


def plot_curves(series: dict[str, list[tuple[int, float]]], path: Path, title: str) -> Figure:
    """The PANELS side by side against the training step; validation points are the epoch means."""
    fig = Figure(figsize=(11, 7), dpi=100)
    axes = fig.subplots(2, 2, sharex=True).flatten()
    for ax, (panel, names) in zip(axes, PANELS.items()):
        for name in names:
            points = series.get(name, [])
            if points:
                style = "o-" if name.startswith("val/") else "-"
                ax.plot(*zip(*points), style, markersize=3, linewidth=1, label=name)
        ax.set_title(panel, fontsize=10)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="grey")
    for ax in axes[2:]:
        ax.set_xlabel("training step")
    fig.supylabel("nats per example (beta: a factor)", fontsize=9)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    return fig


def plot_kl_per_dim(kl_per_dim: list[float], path: Path, title: str) -> Figure:
    """A bar per latent dimension: its KL in nats per example on the test split, from results.json."""
    fig = Figure(figsize=(max(5.0, 0.3 * len(kl_per_dim) + 1.5), 3.5), dpi=100)
    ax = fig.subplots()
    ax.bar(range(len(kl_per_dim)), kl_per_dim, color="tab:blue")
    ax.set_xticks(range(len(kl_per_dim)), [str(d) for d in range(len(kl_per_dim))], fontsize=7)
    ax.set(xlabel="latent dimension d", ylabel="KL(q(z_d|x) || p(z_d)) (nats)", title=title)
    ax.title.set_fontsize(10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return fig


def draw_curves(run_dir: Path, results: dict) -> list[Path]:
    """curves.png from metrics.csv and kl_per_dim.png from `results` (results.json) in `run_dir`; the paths written."""
    written = []
    metrics = run_dir / "metrics.csv"
    if metrics.is_file():
        plot_curves(read_metrics(metrics), run_dir / "curves.png", f"Training curves of {run_dir.name}")
        written.append(run_dir / "curves.png")
    kl = results.get("test/kl_per_dim")
    if kl:
        plot_kl_per_dim(kl, run_dir / "kl_per_dim.png", "KL per latent dimension on the test split")
        written.append(run_dir / "kl_per_dim.png")
    return written

"""report.md: a run folder on one page, readable in a browser or on GitHub.

The command and config choices, the final test metrics, the training curves, the KL of each
latent dimension and every picture, linked by relative paths. `train()` writes it at the end of a
run; `python -m vae.report <run folder>` redraws the curves and the report of any run folder.
"""

import json
import logging
import sys
from pathlib import Path

from omegaconf import OmegaConf

from vae.curves import draw_curves
from vae.errors import train_command

log = logging.getLogger(__name__)

SETTINGS = ["latent", "seed", "optimizer.lr", "trainer.max_epochs", "data.batch_size", "trainer.precision", "nll_samples"]
PICTURES = {  # the final pictures in images/, in reading order, with what each shows
    "reconstructions": "Test images (top row) and their reconstructions from the posterior mean.",
    "samples": "Decoded draws of the prior p(z).",
    "traversals": "One test image with each of its most used latent dimensions swept over [-3, 3].",
    "interpolations": "Straight lines in latent space between the codes of two test images.",
    "manifold": "The decoded grid of the 2-D prior's quantiles.",
    "codes": "Test codes E[z|x], coloured by label.",
}


def read_yaml(path: Path):
    return OmegaConf.to_container(OmegaConf.load(path), resolve=False) if path.is_file() else None


def config_lines(run_dir: Path, config: dict | None) -> list[str]:
    """The command, the config group choices and the main settings, as Markdown lines."""
    lines = []
    overrides = read_yaml(run_dir / ".hydra" / "overrides.yaml")
    if overrides is not None:
        lines += ["```", " ".join([train_command(), *map(str, overrides)]), "```", ""]
    hydra = read_yaml(run_dir / ".hydra" / "hydra.yaml") or {}
    choices = hydra.get("hydra", {}).get("runtime", {}).get("choices", {})
    rows = [(group, option) for group, option in choices.items() if not group.startswith("hydra") and option]
    config = config if config is not None else read_yaml(run_dir / ".hydra" / "config.yaml") or {}
    for key in SETTINGS:
        value = OmegaConf.select(OmegaConf.create(config), key) if config else None
        if value is not None:
            rows.append((key, value))
    if rows:
        lines += ["| setting | value |", "|---|---|", *[f"| {key} | {value} |" for key, value in rows], ""]
    return lines


def metric_lines(results: dict) -> list[str]:
    """The scalar results as a Markdown table (the per-dimension KL is a chart of its own)."""
    shown = {name: value for name, value in results.items() if isinstance(value, (int, float))}
    if not shown:
        return ["No results.json: the run did not finish.", ""]
    lines = ["| metric | value |", "|---|---|"]
    for name, value in shown.items():
        digits = 4 if name.endswith("bpd") else 2
        lines.append(f"| {name} | {value:.{digits}f} |" if isinstance(value, float) else f"| {name} | {value} |")
    k = results.get("test/nll_samples")
    note = f"test/nll is -log p(x) from k = {k} importance samples. " if k else ""
    if k == 0:
        note = "log p(x) was skipped (nll_samples=0). "
    return [*lines, "", f"Nats per example. {note}val/elbo is the best epoch's, the one the test metrics come from.", ""]


def picture_lines(run_dir: Path) -> list[str]:
    """Every final picture with a caption, then the pictures of each epoch as links."""
    images = run_dir / "images"
    lines = []
    for name, caption in PICTURES.items():
        if (images / f"{name}.png").is_file():
            lines += [f"### {name}", "", caption, "", f"![{name}](images/{name}.png)", ""]
    epochs = sorted(images.glob("*_epoch*.png")) if images.is_dir() else []
    if epochs:
        lines += ["### During training", ""]
        by_epoch: dict[str, list[Path]] = {}
        for path in epochs:
            by_epoch.setdefault(path.stem.rsplit("_epoch", 1)[1], []).append(path)
        for epoch, paths in by_epoch.items():
            links = ", ".join(f"[{p.stem.rsplit('_epoch', 1)[0]}](images/{p.name})" for p in paths)
            lines.append(f"- epoch {int(epoch)}: {links}")
        lines.append("")
    return lines


def write_report(run_dir: Path, config: dict | None = None) -> Path:
    """Draw the curves and write `run_dir`/report.md; `config` (the composed config) when .hydra/ is absent."""
    run_dir = Path(run_dir)
    results_file = run_dir / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    charts = draw_curves(run_dir, results)
    title = f"{run_dir.resolve().parent.name}/{run_dir.resolve().name}"  # no absolute path: the folder may move
    lines = [f"# Run {title}", "", *config_lines(run_dir, config), "## Test metrics", "", *metric_lines(results)]
    if charts:
        lines += ["## Curves", ""]
        lines += [f"![{path.stem}]({path.name})\n" for path in charts]
    lines += ["## Pictures", "", *picture_lines(run_dir)]
    path = run_dir / "report.md"
    path.write_text("\n".join(lines))
    return path


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if len(sys.argv) != 2 or not (Path(sys.argv[1]) / "metrics.csv").is_file():
        sys.exit("usage: python -m vae.report <run folder, one with a metrics.csv, e.g. outputs/DATE/TIME>")
    log.info("Written: %s", write_report(Path(sys.argv[1])))

"""Curves and report.md of a real run folder: written at the end of training, redrawn by `python -m vae.report`."""

import csv
import json
import subprocess
import sys

import pytest

from conftest import ROOT, TINY, WITH_PICTURES, make_config
from vae.curves import PANELS, plot_curves, read_metrics


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from vae.training import train

    run_dir = tmp_path_factory.mktemp("run")
    overrides = [*TINY, *WITH_PICTURES, "trainer.max_epochs=2", "latent=2", "callbacks.images.every_n_epochs=1", "nll_samples=2"]
    train(make_config(run_dir, overrides))
    return run_dir


def test_the_curves_are_the_numbers_of_metrics_csv(run_dir, tmp_path):
    with (run_dir / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    series = read_metrics(run_dir / "metrics.csv")
    for name in ("train/loss", "val/elbo", "train/beta"):
        assert series[name] == [(int(row["step"]), float(row[name])) for row in rows if row[name]]
    fig = plot_curves(series, tmp_path / "curves.png", "title")
    for ax, names in zip(fig.axes, PANELS.values()):
        drawn = {line.get_label(): list(zip(line.get_xdata(), line.get_ydata())) for line in ax.lines}
        assert drawn == {name: series[name] for name in names if name in series}


def test_the_report_shows_the_config_the_metrics_the_curves_and_every_picture(run_dir):
    report = (run_dir / "report.md").read_text()
    results = json.loads((run_dir / "results.json").read_text())
    assert f"| test/nll | {results['test/nll']:.2f} |" in report and f"k = {results['test/nll_samples']}" in report
    assert "| latent | 2 |" in report
    for chart in ("curves.png", "kl_per_dim.png"):
        assert (run_dir / chart).stat().st_size > 0 and f"({chart})" in report
    pictures = sorted((run_dir / "images").glob("*.png"))
    assert len(pictures) == 6 * 3  # six pictures at the end and after each of the 2 epochs
    for path in pictures:
        assert f"(images/{path.name})" in report, path.name


@pytest.mark.slow
def test_python_m_vae_report_redraws_a_run_folder(run_dir):
    for name in ("report.md", "curves.png", "kl_per_dim.png"):
        (run_dir / name).unlink()
    command = [sys.executable, "-m", "vae.report", str(run_dir)]
    result = subprocess.run(command, cwd=ROOT / "src", capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert all((run_dir / name).is_file() for name in ("report.md", "curves.png", "kl_per_dim.png"))
    missing = subprocess.run([sys.executable, "-m", "vae.report", str(run_dir / "nowhere")], cwd=ROOT / "src",
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert missing.returncode == 1 and missing.stderr.startswith("usage:")

"""Sweep summaries from hand-made run folders, then a real multirun: summary files and one W&B group."""

import csv
import json
import os

from omegaconf import OmegaConf
from PIL import Image

from conftest import TINY, run_script
from vae.sweep import summarize, swept_keys
from wandb_files import read_run


def fake_run(sweep_dir, job, overrides, nll=None):
    """A job folder as Hydra and train() leave it; no results.json when nll is None (a failed run)."""
    folder = sweep_dir / str(job)
    (folder / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), folder / ".hydra" / "overrides.yaml")
    if nll is not None:
        results = {"test/nll": nll, "test/elbo": -nll - 3.0, "test/bpd": nll / 543.4, "test/active_units": 5}
        (folder / "results.json").write_text(json.dumps(results))


def test_summary_sorts_runs_by_test_nll_with_failed_runs_last(tmp_path):
    runs = [("model=mlp", "latent=2", 140.0), ("model=mlp", "latent=16", 95.5), ("model=conv", "latent=2", None)]
    runs += [("model=conv", "latent=16", 90.25)]
    for job, (model, latent, nll) in enumerate(runs):
        fake_run(tmp_path, job, [model, latent, "trainer.max_epochs=5"], nll)
    fake_run(tmp_path, 10, ["model=conv", "latent=32", "trainer.max_epochs=5"], 88.0)  # job 10 sorts after 2, not 1

    summarize(tmp_path)
    with (tmp_path / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [row["run"] for row in rows] == ["10", "3", "1", "0", "2"]
    assert [row["test/nll"] for row in rows] == ["88.0", "90.25", "95.5", "140.0", ""]
    assert (rows[0]["model"], rows[0]["latent"]) == ("conv", "32")
    assert "trainer.max_epochs" not in rows[0] and rows[0]["overrides"] == "model=conv,latent=32,trainer.max_epochs=5"
    table = (tmp_path / "summary.md").read_text().splitlines()
    assert table[4].startswith("| run | model | latent | test/nll |") and "| failed |" in table[-1]
    with Image.open(tmp_path / "summary.png") as plot:
        assert plot.size == (600, 400)


def test_swept_keys_are_those_that_differ_between_runs():
    runs = [{"overrides": {"a": "1", "b": "x", "c": "5"}}, {"overrides": {"a": "2", "b": "x"}}]
    assert swept_keys(runs) == ["a", "c"]  # c is missing from one run: that differs too


def test_multirun_writes_a_summary_and_shares_one_wandb_group(tmp_path):
    args = ["-m", *TINY, "latent=2,3", "logger=wandb", "nll_samples=5"]
    result = run_script("train.py", *args, cwd=tmp_path, env={**os.environ, "WANDB_MODE": "offline"})
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "outputs" / "multirun").glob("*/*")

    with (sweep_dir / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert sorted(row["latent"] for row in rows) == ["2", "3"]
    nll = [float(row["test/nll"]) for row in rows]
    assert nll == sorted(nll)
    for row in rows:  # the numbers are each run's own results.json
        assert json.loads((sweep_dir / row["run"] / "results.json").read_text())["test/nll"] == float(row["test/nll"])
    assert (sweep_dir / "summary.md").is_file() and (sweep_dir / "summary.png").is_file()

    runs = [read_run(path)["run"] for path in sweep_dir.glob("*/wandb/offline-run-*")]
    assert len(runs) == 2 and len({run.run_id for run in runs}) == 2
    assert {run.run_group for run in runs} == {str(sweep_dir.relative_to(tmp_path))}
    assert sorted("latent=2" in run.display_name for run in runs) == [False, True]

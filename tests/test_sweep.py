"""Sweep summaries from hand-made run folders, then a real multirun: summary files and one W&B group."""

import csv
import json
import math
import os

import pytest
from omegaconf import OmegaConf
from PIL import Image

from conftest import TINY, run_script
from vae.sweep import summarize, swept_keys
from wandb_files import read_run


def fake_run(sweep_dir, job, overrides, nll=None, k=100, val_elbo=None, error=None):
    """A job folder as Hydra and train() leave it; no results.json when nll is None (a failed run, or one still
    running), and error.txt with `error` for a run that failed."""
    folder = sweep_dir / str(job)
    (folder / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), folder / ".hydra" / "overrides.yaml")
    OmegaConf.save(OmegaConf.create({"job": job}), folder / ".hydra" / "config.yaml")
    if error is not None:
        (folder / "error.txt").write_text(error + "\n")
    if nll is not None:
        results = {"test/nll": nll, "test/elbo": -nll - 3.0, "test/bpd": nll / 543.4, "test/active_units": 5}
        results |= {"test/nll_samples": k, "val/elbo": -nll - 4.0 if val_elbo is None else val_elbo}
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
    assert [row["k"] for row in rows] == ["100"] * 4 + [""]  # the k behind each NLL
    assert (rows[0]["model"], rows[0]["latent"]) == ("conv", "32")
    assert "trainer.max_epochs" not in rows[0] and rows[0]["overrides"] == "model=conv,latent=32,trainer.max_epochs=5"
    table = (tmp_path / "summary.md").read_text().splitlines()
    assert table[4].startswith("| run | model | latent | test/nll | k | val/elbo |") and "| no results |" in table[-1]
    assert "Sorted by test/nll" in table[2] and "k = 100" in table[2]
    with Image.open(tmp_path / "summary.png") as plot:
        assert plot.size == (600, 400)
    assert OmegaConf.load(tmp_path / "best_config.yaml").job == 10  # the highest val/elbo


def test_nlls_of_different_k_are_not_ranked_against_each_other(tmp_path):
    fake_run(tmp_path, 0, ["latent=2"], nll=100.0, k=5000, val_elbo=-110.0)
    fake_run(tmp_path, 1, ["latent=16"], nll=99.0, k=100, val_elbo=-104.0)  # a looser bound, yet a lower NLL
    fake_run(tmp_path, 2, ["latent=64"], nll=98.0, k=100, val_elbo=-107.0)
    rows = summarize(tmp_path)
    assert [row["run"] for row in rows] == ["1", "2", "0"]  # by val/elbo, not by NLLs of k = 100 and 5000
    text = (tmp_path / "summary.md").read_text()
    assert "Not ranked by test/nll" in text and "k = 100, 5000" in text


def test_the_summary_plot_uses_a_log_axis_for_sizes_and_names_what_was_swept(tmp_path):
    from vae.sweep import plot_metric, plot_title, read_runs, summary_rows

    for job, latent in enumerate([2, 8, 64]):
        fake_run(tmp_path, job, [f"latent={latent}", "model=conv"], nll=100.0 - latent / 10)
    rows, _ = summary_rows(read_runs(tmp_path))
    title = plot_title(["latent"], rows, "test/nll", tmp_path)
    (ax,) = plot_metric(rows, ["latent"], tmp_path / "plot.png", title).axes
    assert ax.get_xscale() == "log" and list(ax.get_xticks()) == [2, 8, 64]
    assert ax.get_title().startswith("latent: test/nll (k = 100)") and tmp_path.name in ax.get_title()
    fake_run(tmp_path, 3, ["latent=3", "model=mlp"], nll=99.0)
    rows, _ = summary_rows(read_runs(tmp_path))
    assert plot_metric(rows, ["latent", "model"], tmp_path / "plot.png", title).axes[0].get_xscale() == "log"
    rows = [row | {"latent": str(i + 1)} for i, row in enumerate(rows)]  # 1..4: less than a factor of 8
    assert plot_metric(rows, ["latent"], tmp_path / "plot.png", title).axes[0].get_xscale() == "linear"


@pytest.mark.slow
def test_a_sweep_runs_every_run_it_can_and_exits_1_naming_the_failed_one(tmp_path):
    args = ["-m", *TINY, "latent=2,0,3", "nll_samples=2"]
    result = run_script("train.py", *args, cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "outputs" / "multirun").glob("*/*")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: 1 of 3 runs of the sweep failed: run 1 ({TINY[0]},latent=0,nll_samples=2): latent=0 is invalid: "
        f"it must be an integer >= 1; the others: {sweep_dir.relative_to(tmp_path)}/summary.md"
    ]
    assert "Traceback" not in result.stderr
    assert (sweep_dir / "1" / "error.txt").read_text() == "latent=0 is invalid: it must be an integer >= 1\n"
    assert not (sweep_dir / "1" / "results.json").exists()
    assert all((sweep_dir / job / "results.json").is_file() for job in "02")  # the run after the failed one ran
    with (sweep_dir / "summary.csv").open() as f:
        rows = {row["latent"]: row for row in csv.DictReader(f)}
    assert rows["0"]["error"] == "latent=0 is invalid: it must be an integer >= 1" and not rows["0"]["test/nll"]
    assert rows["2"]["test/nll"] and rows["3"]["test/nll"] and not rows["2"]["error"]
    assert "| failed |" in (sweep_dir / "summary.md").read_text()
    assert OmegaConf.load(sweep_dir / "best_config.yaml").latent in (2, 3)


def test_the_summary_names_each_failed_run_with_its_overrides_and_error(tmp_path):
    from vae.sweep import failures_message

    fake_run(tmp_path, 0, ["latent=2"], nll=100.0)
    assert failures_message(tmp_path) is None
    fake_run(tmp_path, 1, ["latent=0"], error="latent=0 is invalid: it must be an integer >= 1")
    fake_run(tmp_path, 2, ["latent=3"])  # still running: no error, no results
    for job in range(3, 7):
        fake_run(tmp_path, job, [f"latent={job}", "optimizer.lr=9"], error="training diverged at step 3: kl is inf")
    message = failures_message(tmp_path)
    assert message == (
        "5 of 7 runs of the sweep failed: run 1 (latent=0): latent=0 is invalid: it must be an integer >= 1; "
        "run 3 (latent=3,optimizer.lr=9): training diverged at step 3: kl is inf; "
        "run 4 (latent=4,optimizer.lr=9): training diverged at step 3: kl is inf; "
        f"and 2 more (each run's error.txt); the others: {tmp_path}/summary.md"
    )
    rows = {row["run"]: row for row in summarize(tmp_path)}
    assert rows["1"]["error"].startswith("latent=0 is invalid") and rows["2"]["error"] is None
    table = (tmp_path / "summary.md").read_text()
    assert "| 1 | 0 |  | failed |" in table and "| 2 | 3 |  | no results |" in table


@pytest.fixture
def in_a_sweep(tmp_path):
    """Hydra's state inside job 0 of a -m sweep whose job folder is tmp_path/0, as the launcher sets it."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict

    from conftest import CONF

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[*TINY, "latent=0"], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.runtime.output_dir = str(tmp_path / "0")
    (tmp_path / "0").mkdir()
    HydraConfig.instance().set_config(cfg)
    yield tmp_path / "0"
    HydraConfig.instance().cfg = None


def test_a_failed_run_of_a_sweep_is_recorded_and_returns_the_worst_value_whatever_failed(in_a_sweep):
    from vae.errors import ConfigError, RunStopped, exits_on_user_error
    from vae.sweep import sweep_member

    @sweep_member
    @exits_on_user_error
    def bad_setting(cfg):
        raise ConfigError("latent=0 is invalid: it must be an integer >= 1")

    assert bad_setting(None) == math.inf  # for sweepers that minimise, as train_main's -val/elbo
    assert (in_a_sweep / "error.txt").read_text() == "latent=0 is invalid: it must be an integer >= 1\n"

    @sweep_member
    def bug(cfg):
        raise KeyError("a bug\nover two lines")

    assert bug(None) == math.inf
    assert (in_a_sweep / "error.txt").read_text() == "KeyError: 'a bug\\nover two lines'\n"

    @sweep_member
    def fine(cfg):
        return 1.5

    assert fine(None) == 1.5 and not (in_a_sweep / "error.txt").exists()  # a rerun into the folder clears it

    @sweep_member
    def stopped(cfg):
        raise RunStopped("stopped by SIGTERM at step 3")

    with pytest.raises(RunStopped):  # SIGTERM stops the whole sweep
        stopped(None)


def test_outside_a_sweep_a_failed_run_raises_as_before(tmp_path):
    from vae.sweep import sweep_member

    @sweep_member
    def bug(cfg):
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        bug(None)


@pytest.mark.slow
def test_re_evaluating_a_run_keeps_what_training_wrote_and_the_sweep_still_picks_it(tmp_path):
    from conftest import make_config
    from vae.training import train

    sweep = tmp_path / "sweep"
    for job, latent in enumerate([2, 3]):
        run_dir = sweep / str(job)
        train(make_config(run_dir, [*TINY, f"latent={latent}", "nll_samples=2"]))  # writes .hydra/ itself
        OmegaConf.save(OmegaConf.create([f"latent={latent}"]), run_dir / ".hydra" / "overrides.yaml")
        OmegaConf.save(OmegaConf.create({"latent": latent}), run_dir / ".hydra" / "config.yaml")
    trained = [json.loads((sweep / job / "results.json").read_text()) for job in "01"]
    best = max((0, 1), key=lambda job: trained[job]["val/elbo"])

    ckpt = sweep / str(best) / "checkpoints" / "best.ckpt"
    result = run_script("eval.py", f"ckpt_path={ckpt}", "nll_samples=3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    merged = json.loads((sweep / str(best) / "results.json").read_text())
    assert merged["val/elbo"] == trained[best]["val/elbo"]  # kept from training
    assert merged["test/nll_samples"] == 3 != trained[best]["test/nll_samples"]  # replaced by the evaluation
    summarize(sweep)
    assert OmegaConf.load(sweep / "best_config.yaml").latent == [2, 3][best]
    assert "Not ranked by test/nll" in (sweep / "summary.md").read_text()  # k = 2 and k = 3 side by side


def test_swept_keys_are_those_that_differ_between_runs():
    runs = [{"overrides": {"a": "1", "b": "x", "c": "5"}}, {"overrides": {"a": "2", "b": "x"}}]
    assert swept_keys(runs) == ["a", "c"]  # c is missing from one run: that differs too


@pytest.mark.slow
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
    assert "2 runs" in result.stdout + result.stderr  # the final summary, once

    runs = [read_run(path)["run"] for path in sweep_dir.glob("*/wandb/offline-run-*")]
    assert len(runs) == 2 and len({run.run_id for run in runs}) == 2
    assert {run.run_group for run in runs} == {str(sweep_dir.relative_to(tmp_path))}
    assert sorted(run.display_name for run in runs) == ["latent=2", "latent=3"]  # the swept value only

"""metrics=[...] end to end on tiny generated shapes: a real training judged at its end (results.json, W&B),
eval.py merging the metrics into results.json, the sweep summary's columns, and one-line refusals."""

import json
import math
import os

import pytest

from conftest import TINY, make_config, run_script
from vae.sweep import summarize
from vae.training import train
from wandb_files import read_run

SHAPES = ["data=shapes", "data.scales=2", "data.orientations=4", "data.positions=4", "data.val_size=32",
          "data.test_size=64", "model=conv", "latent=4", "nll_samples=2"]  # fmt: skip
JUDGED = ["mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "factor_vae", "fid", "fid_reference",
          "precision", "recall", "feature_net_accuracy"]  # fmt: skip


@pytest.fixture(scope="module")
def judged_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("judged")
    overrides = [*TINY, *SHAPES, f"paths.data_dir={tmp / 'data'}", "objective=beta_tcvae", "logger=wandb",
                 "metrics=[mig,dci,factor_vae,fid,precision_recall]"]  # fmt: skip
    results = train(make_config(tmp / "run", overrides))
    return tmp, results


@pytest.mark.slow
def test_training_judges_the_model_into_results_json_and_wandb(judged_run):
    tmp, results = judged_run
    written = json.loads((tmp / "run" / "results.json").read_text())
    for name in JUDGED:
        assert math.isfinite(written[f"test/{name}"]) and written[f"test/{name}"] == results[f"test/{name}"], name
    for name in ("mig", "dci_disentanglement", "dci_completeness", "factor_vae", "precision", "recall"):
        assert 0 <= written[f"test/{name}"] <= 1, name
    (offline,) = (tmp / "run" / "wandb").glob("offline-run-*")
    summary = read_run(offline)["summary"]
    assert {f"test/{name}": written[f"test/{name}"] for name in JUDGED} == {f"test/{n}": summary[f"test/{n}"] for n in JUDGED}


@pytest.mark.slow
def test_eval_merges_the_metrics_it_is_asked_for_into_results_json(judged_run):
    tmp, _ = judged_run
    results_file = tmp / "run" / "results.json"
    before = json.loads(results_file.read_text())
    for name in JUDGED:
        before.pop(f"test/{name}")
    results_file.write_text(json.dumps(before))
    ckpt = tmp / "run" / "checkpoints" / "best.ckpt"
    result = run_script("eval.py", f"ckpt_path={ckpt}", "nll_samples=2", "metrics=[mig,fid]", "device=cpu", cwd=tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    after = json.loads(results_file.read_text())
    assert {"test/mig", "test/fid", "test/fid_reference", "test/feature_net_accuracy"} <= set(after)
    assert "test/factor_vae" not in after and after["val/elbo"] == before["val/elbo"]  # merged, not replaced
    assert "mig" in result.stdout + result.stderr  # the table shows them


def test_the_sweep_summary_shows_the_metrics_side_by_side(tmp_path):
    from omegaconf import OmegaConf

    for job, (objective, mig) in enumerate((("elbo", 0.05), ("beta_tcvae", 0.2))):
        folder = tmp_path / str(job)
        (folder / ".hydra").mkdir(parents=True)
        OmegaConf.save(OmegaConf.create([f"objective={objective}"]), folder / ".hydra" / "overrides.yaml")
        OmegaConf.save(OmegaConf.create({}), folder / ".hydra" / "config.yaml")
        results = {"test/nll": 50.0 - job, "test/nll_samples": 10, "val/elbo": -50.0, "test/mig": mig, "test/fid": 3.5}
        (folder / "results.json").write_text(json.dumps(results))
    rows = summarize(tmp_path)
    assert [(row["objective"], row["test/mig"], row["test/fid"]) for row in rows] == [
        ("beta_tcvae", 0.2, 3.5), ("elbo", 0.05, 3.5)]  # fmt: skip
    table = (tmp_path / "summary.md").read_text()
    assert "test/mig" in table and "0.200" in table and "test/dci_completeness" not in table  # only what was measured


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, words",
    [
        (["metrics=[mig]"], "metrics: mig needs data whose images come with the factors"),
        (["metrics=[inception]"], "metrics: inception is unknown: choose from mig, dci"),
    ],
)
def test_a_metric_that_cannot_work_is_one_line_before_training(tmp_path, args, words):
    result = run_script("train.py", *TINY, *args, cwd=tmp_path, env={**os.environ, "WANDB_MODE": "offline"})
    assert result.returncode == 2 and words in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and not list(tmp_path.glob("outputs/*/*/checkpoints"))

"""Short real trainings: every architecture with every beta schedule, a few steps on real digits."""

import csv
import json
import math

import pytest
from hydra.utils import instantiate

from conftest import TINY, WITH_PICTURES, make_config
from vae.training import train


def read_metrics(run_dir) -> list[dict]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mlp", "conv"])
@pytest.mark.parametrize("beta", ["constant", "linear", "cyclical"])
def test_each_model_trains_with_each_schedule(tmp_path, model, beta):
    overrides = [*TINY, *WITH_PICTURES, f"model={model}", f"beta={beta}", "latent=4", "trainer.max_epochs=2"]
    if beta != "constant":  # short schedules, so the few steps see beta move
        overrides += {"linear": ["beta.warmup_steps=4"], "cyclical": ["beta.cycle_steps=4"]}[beta]
    cfg = make_config(tmp_path, overrides)
    results = train(cfg)

    assert math.isfinite(results["test/elbo"]) and results["test/elbo"] < 0
    assert results["test/elbo"] == pytest.approx(-(results["test/rec"] + results["test/kl"]), rel=1e-4)
    assert json.loads((tmp_path / "results.json").read_text())["test/elbo"] == pytest.approx(results["test/elbo"])
    assert {"best.ckpt", "last.ckpt"} <= {p.name for p in (tmp_path / "checkpoints").iterdir()}
    assert (tmp_path / "images" / "reconstructions.png").is_file() and (tmp_path / "images" / "samples.png").is_file()

    rows = read_metrics(tmp_path)
    schedule = instantiate(cfg.beta)
    logged = {int(r["step"]): float(r["train/beta"]) for r in rows if r.get("train/beta")}
    assert len(logged) >= 5  # the value in force, every step
    for step, beta_value in logged.items():
        assert beta_value == pytest.approx(schedule.beta(step))
    val = [float(r["val/elbo"]) for r in rows if r.get("val/elbo")]
    assert len(val) == 2 and val[1] > val[0]  # it learns


@pytest.mark.slow
def test_training_is_repeatable_with_a_seed(tmp_path):
    runs = [train(make_config(tmp_path / str(i), [*TINY, "seed=7"])) for i in range(2)]
    assert runs[0]["test/elbo"] == runs[1]["test/elbo"]


@pytest.mark.slow
def test_a_run_without_batch_limits_evaluates_the_whole_test_split(tmp_path):
    """The default run has no limit_test_batches: the closing evaluation must cover all 500 test digits."""
    cfg = make_config(tmp_path, ["trainer.max_epochs=1", "+trainer.limit_train_batches=3", "trainer.accelerator=cpu",
                                 "trainer.enable_progress_bar=false", "nll_samples=5"])  # fmt: skip
    results = train(cfg)
    assert math.isfinite(results["test/nll"]) and results["test/nll"] > 0
    assert results["test/nll"] <= -results["test/elbo"] + 5.0  # log p(x) is at least the ELBO, up to noise
    assert json.loads((tmp_path / "results.json").read_text())["test/nll_samples"] == 5


@pytest.mark.slow
def test_a_compiled_model_trains_and_evaluates_as_the_eager_one(tmp_path):
    """model.compile=true compiles the step's maths (`VAE.terms`): the run, its test and its closing evaluation give
    the eager run's figures up to the noise of its own random draws (inductor draws its own)."""
    runs = {flag: train(make_config(tmp_path / flag, [*TINY, "seed=7", f"model.compile={flag}"])) for flag in ("false", "true")}
    for name in ("test/elbo", "test/nll", "val/elbo"):
        assert runs["true"][name] == pytest.approx(runs["false"][name], rel=0.02)

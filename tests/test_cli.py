"""The command line end to end, in a subprocess, as a user runs it."""

import json

import pytest

from conftest import TINY, WITH_PICTURES

pytestmark = pytest.mark.slow  # every test here runs src/train.py in a subprocess


def test_help_lists_groups_and_options(run_cli):
    result = run_cli("--help")
    assert result.returncode == 0
    for line in ["model: burda, conv, mlp, resnet", "prior: mog, standard_normal, uniform_sphere, vamp", "beta: constant, cyclical, linear", "trainer: cpu, ddp, default, gpu"]:
        assert line in result.stdout
    assert "mnist5k" in result.stdout


def test_a_run_fills_its_folder(run_cli, tmp_path):
    result = run_cli(*TINY, *WITH_PICTURES, "model=conv", "latent=3", "trainer.max_epochs=2", "hydra.run.dir=outputs/run")
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "outputs" / "run"
    for name in [".hydra/config.yaml", ".hydra/overrides.yaml", "checkpoints/last.ckpt", "checkpoints/best.ckpt",
                 "metrics.csv", "images/reconstructions.png", "images/samples.png", "results.json", "train.log"]:  # fmt: skip
        assert (run_dir / name).is_file(), name
    results = json.loads((run_dir / "results.json").read_text())
    assert results["test/elbo"] < 0 and results["checkpoint"].endswith("best.ckpt")
    assert "latent: 3" in (run_dir / ".hydra" / "config.yaml").read_text()
    log = result.stdout + result.stderr
    assert "test/elbo" in log and "test/nll" in log and str(run_dir) in log


def test_default_run_folder_is_dated(run_cli, tmp_path):
    assert run_cli(*TINY).returncode == 0
    (run_dir,) = (tmp_path / "outputs").glob("*-*-*/*-*-*")  # outputs/YYYY-MM-DD/HH-MM-SS
    assert (run_dir / "results.json").is_file()


def test_two_by_two_multirun(run_cli, tmp_path):
    result = run_cli("-m", *TINY, "model=mlp,conv", "latent=2,4", "hydra.sweep.dir=sweep")
    assert result.returncode == 0, result.stderr
    runs = sorted((tmp_path / "sweep").glob("[0-9]*"))
    assert len(runs) == 4
    configs = {(r / ".hydra" / "overrides.yaml").read_text() for r in runs}
    assert len(configs) == 4
    assert all((r / "results.json").is_file() for r in runs)


# Bad input, one clear line each: tests/test_bad_input.py holds the whole table.

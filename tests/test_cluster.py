"""Many runs and many processes through the real engines: submitit, torchrun, Optuna."""

import json
import os
import subprocess
import sys

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.plugins import Plugins

from conftest import CONF, ROOT, TINY


def test_slurm_launcher_asks_for_one_task_per_device(tmp_path):
    overrides = ["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    launcher = Plugins.instance()._instantiate(cfg.hydra.launcher)  # as Hydra does before a sweep
    assert type(launcher).__name__ == "SlurmLauncher"
    assert (launcher.params["nodes"], launcher.params["tasks_per_node"], launcher.params["gpus_per_node"]) == (2, 4, 4)


@pytest.mark.slow
def test_submitit_local_launcher_runs_a_sweep(run_cli, tmp_path):
    result = run_cli("-m", "hydra/launcher=submitit_local", *TINY, "latent=2,3", "hydra.sweep.dir=sweep")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted((tmp_path / "sweep").glob("[0-9]"))
    assert len(runs) == 2 and all((r / "results.json").is_file() for r in runs)
    assert len(list((tmp_path / "sweep" / ".submitit").glob("*/*_result.pkl"))) == 2  # ran as submitit jobs


@pytest.mark.slow
def test_torchrun_launches_two_ranks_into_one_run(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", str(ROOT / "src" / "train.py"),
           *TINY, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", f"hydra.run.dir={tmp_path}/run"]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MEMBER: 2/2" in result.stdout + result.stderr
    assert json.loads((tmp_path / "run" / "results.json").read_text())["test/elbo"] < 0


@pytest.mark.slow
def test_optuna_search_minimises_the_validation_nll(run_cli, tmp_path):
    result = run_cli("hparams_search=optuna", "hydra.sweeper.n_trials=3", *TINY, "hydra.sweep.dir=search")
    assert result.returncode == 0, result.stderr[-3000:]
    root = tmp_path / "search"
    trials = sorted(root.glob("[0-9]"))
    assert len(trials) == 3
    val_nll = [-json.loads((t / "results.json").read_text())["val/elbo"] for t in trials]
    best = yaml.safe_load((root / "optimization_results.yaml").read_text())
    assert best["best_value"] == min(val_nll) > 0
    best_trial = trials[val_nll.index(min(val_nll))]
    assert yaml.safe_load((root / "best_config.yaml").read_text()) == yaml.safe_load(
        (best_trial / ".hydra" / "config.yaml").read_text()
    )


@pytest.mark.slow
def test_optuna_search_goes_on_past_a_failed_trial(run_cli, tmp_path):
    result = run_cli("hparams_search=optuna", "hydra.sweeper.n_trials=4", *TINY, "nll_samples=2",
                     "hydra.sweeper.params.latent='choice(0,2)'", "hydra.sweep.dir=search")  # fmt: skip
    trials = sorted((tmp_path / "search").glob("[0-9]"))
    failed = [t for t in trials if (t / "error.txt").is_file()]
    ran = [t for t in trials if (t / "results.json").is_file()]
    assert len(trials) == 4 and failed and ran and len(failed) + len(ran) == 4, result.stderr[-3000:]
    assert result.returncode == 1 and f"error: {len(failed)} of 4 runs of the sweep failed: run " in result.stderr
    assert all((t / "error.txt").read_text().startswith("latent=0 is invalid") for t in failed)
    best = yaml.safe_load((tmp_path / "search" / "optimization_results.yaml").read_text())
    assert best["best_params"]["latent"] == 2
    assert best["best_value"] == min(-json.loads((t / "results.json").read_text())["val/elbo"] for t in ran)

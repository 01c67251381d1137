"""The first hour of a new user (issue 26): log p(x) can be skipped, run folders hold no absolute path."""

import json

import pytest

from conftest import TINY, make_config


def test_nll_samples_zero_skips_log_px_and_the_run_folder_holds_no_absolute_path(tmp_path):
    from vae.training import train

    run = tmp_path / "run"
    results = train(make_config(run, [*TINY, "nll_samples=0", "data.test_size=64"]))
    saved = json.loads((run / "results.json").read_text())
    assert "test/nll" not in saved and saved["test/nll_samples"] == 0 and "not estimated" in saved["test/nll_skipped"]
    assert saved["checkpoint"] == "checkpoints/best.ckpt" and "run_dir" not in saved
    assert (run / saved["checkpoint"]).is_file() and results["checkpoint"] == str(run / "checkpoints" / "best.ckpt")
    report = (run / "report.md").read_text()
    assert "log p(x) was skipped (nll_samples=0)" in report
    assert str(tmp_path) not in report.splitlines()[0] and str(tmp_path) not in json.dumps(saved)
    # vae-eval on the moved folder: a k = 2 figure replaces the skipped one, and k = 0 later keeps it
    from omegaconf import OmegaConf

    from conftest import CONF
    from vae.evaluation import evaluate_checkpoint

    moved = run.rename(tmp_path / "moved")
    for k in (2, 0):
        cfg = OmegaConf.merge(OmegaConf.load(CONF / "eval.yaml"), {"ckpt_path": str(moved / saved["checkpoint"]), "nll_samples": k})
        evaluate_checkpoint(cfg)
        merged = json.loads((moved / "results.json").read_text())
        assert merged["test/nll_samples"] == 2 and merged["test/nll"] > 0 and "test/nll_skipped" not in merged
        assert merged["checkpoint"] == "checkpoints/best.ckpt" and "val/elbo" in merged


def test_a_feature_whose_extra_is_missing_says_so_in_one_line(monkeypatch):
    import sys

    from hydra.errors import MissingConfigException

    from vae.errors import ConfigError, user_error_message
    from vae.loggers import wandb_logger
    from vae.metrics.suite import check_metrics

    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ConfigError, match=r"^logger=wandb needs the optional extra 'wandb': pip install 'vae-zoo\[wandb\]'"):
        wandb_logger(save_dir=".")
    with pytest.raises(ConfigError, match=r"^metrics: mig needs the optional extra 'metrics'"):
        check_metrics(["mig"], None)
    try:
        import wandb  # noqa: F401
    except ImportError as err:
        assert user_error_message(err) == str(ConfigError(user_error_message(err)))
        assert "'vae-zoo[wandb]'" in user_error_message(err) and "\n" not in user_error_message(err)
    hydra_refusal = MissingConfigException("Could not load 'hydra/sweeper/optuna'", "hydra/sweeper/optuna", ["basic"])
    assert user_error_message(hydra_refusal).startswith("hparams_search=optuna needs the optional extra 'optuna'")


def test_mlflow_records_the_config_flat_metrics_pictures_and_the_best_checkpoint(tmp_path):
    from mlflow.tracking import MlflowClient

    from conftest import WITH_PICTURES
    from vae.training import train

    store = f"file:{tmp_path / 'mlruns'}"
    overrides = [*TINY, *WITH_PICTURES, "logger=mlflow", f"logger.mlflow.tracking_uri={store}", "nll_samples=2",
                 "data.test_size=64", "model.hidden=[32]"]  # fmt: skip
    results = train(make_config(tmp_path / "run", overrides))
    client = MlflowClient(tracking_uri=store)
    (run,) = client.search_runs([client.get_experiment_by_name("vae").experiment_id])
    params, metrics = run.data.params, run.data.metrics
    assert params["latent"] == "20" and params["model/hidden"] == "[32]" and "config/latent" not in params
    assert {"train/loss", "val/elbo", "test/elbo", "test/nll"} <= set(metrics)
    assert metrics["test/nll"] == results["test/nll"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    pictures = {a.path for a in client.list_artifacts(run.info.run_id, "images")}
    assert any("reconstructions" in path for path in pictures) and any("samples" in path for path in pictures)
    best = {a.path for a in client.list_artifacts(run.info.run_id, "best")}
    assert "best" in artifacts and "best/best.ckpt" in best, (artifacts, best)


def test_wandb_receives_the_config_flat(tmp_path):
    from vae.loggers import wandb_logger

    logger = wandb_logger(save_dir=str(tmp_path), mode="offline", log_model=False, tags=[])
    logger.log_hyperparams({"config": {"latent": 20, "model": {"hidden": [400]}}})
    config = logger.experiment.config
    assert config["latent"] == 20 and config["model"]["hidden"] == [400] and "config" not in config
    logger.experiment.finish()


NOISE = ("Tip:", "litlogger", "Here be dragons", "dataloader_iter", "deprecated", "Warning", "| Name", "FLOPs",
         "Study name", "Sampler:", "setup plugin", "\x1b[", "Traceback")  # fmt: skip


def test_the_python_api_is_as_quiet_as_the_command(tmp_path, capfd, caplog):
    import logging
    import warnings

    import vae

    with caplog.at_level(logging.INFO), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # what a notebook would show; pytest's own settings hide some
        vae.train(vae.compose([*TINY, "nll_samples=0", "steps_per_call=4"], output_dir=tmp_path))
    out, err = capfd.readouterr()
    lines = [record.getMessage() for record in caplog.records if record.name.startswith("lightning")]
    shown = "\n".join([out, err, *lines, *(str(w.message) for w in caught)])
    assert not [word for word in NOISE if word in shown], shown
    assert any(r.getMessage().startswith("model: ") and "parameters" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_an_optuna_sweep_writes_no_plugin_chatter_or_colour_codes(run_cli, tmp_path):
    result = run_cli("hparams_search=optuna", "hydra.sweeper.n_trials=2", *TINY, "nll_samples=0")
    assert result.returncode == 0, result.stderr[-3000:]
    logs = "\n".join(path.read_text() for path in (tmp_path / "outputs").glob("multirun/*/*/*/train.log"))
    shown = "\n".join([result.stdout, result.stderr, logs])
    assert not [word for word in NOISE if word in shown], shown[-3000:]
    assert "Best parameters" in shown  # the sweeper's result stays


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, words",
    [
        (["-m", *TINY, "latent=2,3", "--cfg", "hydra"], "cannot be given together"),
        (["-m", *TINY, "hydra/launcher=slurm", "latent=2"], "this machine has no srun"),
    ],
)
def test_a_refused_command_is_one_line_not_a_traceback(run_cli, args, words):
    import shutil

    if words.endswith("srun") and shutil.which("srun"):
        pytest.skip("this machine is a SLURM cluster")
    result = run_cli(*args)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr[-3000:]
    assert result.stderr.startswith("error: ") and words in result.stderr

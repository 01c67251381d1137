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

    from vae.data import ImageData
    from vae.errors import ConfigError, user_error_message
    from vae.loggers import wandb_logger
    from vae.metrics.suite import check_metrics

    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ConfigError, match=r"^logger=wandb needs the optional extra 'wandb': pip install 'vae-zoo\[wandb\]'"):
        wandb_logger(save_dir=".")
    with pytest.raises(ConfigError, match=r"^metrics: mig needs the optional extra 'metrics'"):
        check_metrics(["mig"], ImageData())
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


class DiskDigits:
    """A user's own data set on disk, one .npy file per image: nothing is read before an item is asked for."""

    def __init__(self, folder: str):
        from pathlib import Path

        self.files = sorted(Path(folder).glob("*.npy"))

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        import numpy as np
        import torch

        image = torch.from_numpy(np.load(self.files[index]))  # (1, 28, 28) uint8
        return image, int(self.files[index].stem.split("_")[1])


def write_digits(folder, n: int = 300):
    import numpy as np

    from vae.image_sources import load_mnist5k

    images, labels = load_mnist5k()
    folder.mkdir(parents=True)
    for i in range(n):
        np.save(folder / f"{i:05d}_{int(labels[i * 10])}.npy", images[i * 10].numpy())
    return folder


def user_dataset_module(tmp_path):
    """DiskDigits as a module of the user's own, importable by name, and a config folder that names it."""
    import inspect
    import sys

    (tmp_path / "mydata.py").write_text("import torch\n\n\n" + inspect.getsource(DiskDigits).replace(
        "class DiskDigits:", "class DiskDigits(torch.utils.data.Dataset):"))  # fmt: skip
    (tmp_path / "myconf" / "data").mkdir(parents=True)
    (tmp_path / "myconf" / "data" / "digits.yaml").write_text(
        "_target_: vae.data.DatasetData\ndataset:\n  _target_: mydata.DiskDigits\n"
        f"  folder: {write_digits(tmp_path / 'digits')}\nbatch_size: 32\nnum_workers: 2\nnum_classes: 10\nseed: ${{seed}}\n"
    )
    sys.path.insert(0, str(tmp_path))
    return tmp_path / "myconf"


def test_your_own_dataset_on_disk_trains_draws_and_evaluates(tmp_path, monkeypatch):
    import sys

    from omegaconf import OmegaConf

    from conftest import CONF, WITH_PICTURES
    from vae.errors import ConfigError
    from vae.evaluation import evaluate_checkpoint
    from vae.training import train

    conf = user_dataset_module(tmp_path)
    monkeypatch.setattr(sys, "path", sys.path)
    run = tmp_path / "run"
    overrides = [*TINY, *WITH_PICTURES, f"hydra.searchpath=[file://{conf}]", "data=digits", "nll_samples=2"]
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.output_dir={run}", *overrides])
    results = train(cfg)
    assert results["test/nll"] > 0 and (run / "images" / "reconstructions.png").is_file()
    ckpt = run / "checkpoints" / "best.ckpt"
    eval_cfg = OmegaConf.merge(OmegaConf.load(CONF / "eval.yaml"), {"ckpt_path": str(ckpt), "nll_samples": 2})
    with pytest.raises(ConfigError, match=r"trust=\[mydata.DiskDigits\]"):  # a checkpoint is data: the user says so
        evaluate_checkpoint(eval_cfg)
    evaluated = evaluate_checkpoint(OmegaConf.merge(eval_cfg, {"trust": ["mydata.DiskDigits"]}))
    assert evaluated["test/nll"] > 0 and evaluated["test/nll_samples"] == 2


@pytest.mark.slow
def test_your_own_dataset_from_your_config_folder_sweeps_evaluates_and_draws(tmp_path):
    import os

    from conftest import run_script

    conf = user_dataset_module(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    searchpath = f"hydra.searchpath=[file://{conf}]"
    result = run_script("train.py", "-m", searchpath, "data=digits", *TINY, "latent=2,3", "nll_samples=2", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    (ckpt, _) = sorted((tmp_path / "outputs" / "multirun").glob("*/*/*/checkpoints/best.ckpt"))
    for script, args in (("eval.py", ["nll_samples=3"]), ("sample.py", ["n=16"])):
        result = run_script(script, f"ckpt_path={ckpt}", searchpath, *args, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((ckpt.parents[1] / "results.json").read_text())["test/nll_samples"] == 3
    assert (ckpt.parents[1] / "samples" / "samples.png").is_file()

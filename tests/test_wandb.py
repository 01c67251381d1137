"""Loggers for real: W&B in offline mode read back from its run files, TensorBoard from its event
files, the CSV file beside them, and W&B's fallback to offline without a key or a server."""

import csv
import json
import os
import sys
import time

import pytest

from conftest import ROOT, TINY, WITH_PICTURES, run_script
from wandb_files import read_run

PICTURES = ["reconstructions", "samples", "traversals", "interpolations"]


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory):
    """One short training with W&B (offline), TensorBoard and CSV together; its run folder."""
    cwd = tmp_path_factory.mktemp("loggers")
    args = [*TINY, *WITH_PICTURES, "logger=[wandb,tensorboard]", "trainer.log_every_n_steps=1", "nll_samples=5",
            "trainer.max_epochs=2"]  # fmt: skip
    result = run_script("train.py", *args, cwd=cwd, env={**os.environ, "WANDB_MODE": "offline"})
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (cwd / "outputs").glob("*/*")
    return run_dir


@pytest.mark.slow
def test_wandb_run_holds_config_history_pictures_summary_and_best_checkpoint(logged_run):
    (offline,) = (logged_run / "wandb").glob("offline-run-*")
    run = read_run(offline)
    config = run["config"]  # the composed config, resolved, flat: a W&B filter reads config.latent
    assert "config" not in config and config["model"]["hidden"] == [400]
    assert config["latent"] == 20 and config["model"]["encoder"]["_target_"] == "vae.nets.mlp.MLPEncoder"
    assert config["paths"]["output_dir"] == str(logged_run)
    keys = {key for row in run["history"] for key in row}
    assert {"train/loss", "train/kl", "val/elbo", "test/elbo", "trainer/global_step"} <= keys
    assert {f"images/{name}/_type" for name in PICTURES} <= keys
    train_steps = [row["trainer/global_step"] for row in run["history"] if "train/loss" in row]
    assert len(train_steps) == 6  # a value per step, 3 steps in each of 2 epochs
    images = {path.name.rsplit("_", 2)[0] for path in (offline / "files" / "media" / "images" / "images").glob("*.png")}
    assert set(PICTURES) <= images
    summary = run["summary"]
    assert summary["test/nll"] > 0 and summary["test/active_units"] >= 0 and len(summary["test/kl_per_dim"]) == 20
    results = json.loads((logged_run / "results.json").read_text())
    val_elbo = [row["val/elbo"] for row in run["history"] if "val/elbo" in row]
    assert summary["val/elbo"] == results["val/elbo"] == max(val_elbo)  # the best epoch's, not the last
    assert run["run"].job_type == "train" and {"model=mlp", "beta=constant", "data=mnist5k"} <= set(run["run"].tags)
    captions = [row[f"images/{name}/captions"] for row in run["history"] for name in PICTURES if f"images/{name}/captions" in row]
    assert len(captions) >= len(PICTURES) and all("epoch" in caption[0] for caption in captions)
    (best,) = [a for a in run["artifacts"] if "best" in a.aliases]
    assert best.type == "model" and any(entry.path == "model.ckpt" for entry in best.manifest.contents)


@pytest.mark.slow
def test_the_report_curves_are_the_wandb_history(logged_run):
    from vae.curves import read_metrics

    (offline,) = (logged_run / "wandb").glob("offline-run-*")
    history = read_run(offline)["history"]
    curves = read_metrics(logged_run / "metrics.csv")
    for name in ("train/loss", "train/kl", "train/beta", "val/elbo", "val/rec"):
        logged = [(row["trainer/global_step"], row[name]) for row in history if name in row]
        assert [step for step, _ in curves[name]] == [step for step, _ in logged], name
        assert [value for _, value in curves[name]] == pytest.approx([value for _, value in logged]), name
    assert (logged_run / "curves.png").is_file() and "(curves.png)" in (logged_run / "report.md").read_text()


@pytest.mark.slow
def test_tensorboard_holds_the_scalars_and_pictures(logged_run):
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    events = EventMultiplexer().AddRunsFromDirectory(str(logged_run / "tensorboard"))
    events.Reload()
    tags = [tags for tags in events.Runs().values()]
    scalars = {tag for run in tags for tag in run["scalars"]}
    images = {tag for run in tags for tag in run["images"]}
    assert {"train/loss", "val/elbo", "test/elbo", "test/nll", "test/bpd"} <= scalars
    assert {f"images/{name}" for name in PICTURES} <= images


@pytest.mark.slow
def test_csv_stays_on_beside_the_other_loggers(logged_run):
    with (logged_run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert any(row.get("train/loss") for row in rows) and any(row.get("test/nll") for row in rows)


@pytest.mark.slow
def test_wandb_without_a_key_falls_back_to_offline_with_one_warning(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k != "NETRC"}
    env |= {"HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}  # no ~/.netrc, no W&B settings with a key
    start = time.monotonic()
    result = run_script("train.py", *TINY, "logger=wandb", "nll_samples=2", cwd=tmp_path, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    warnings = [line for line in output.splitlines() if "W&B is offline" in line]
    assert len(warnings) == 1 and "no API key" in warnings[0]
    assert list((tmp_path / "outputs").glob("*/*/wandb/offline-run-*/run-*.wandb"))
    assert time.monotonic() - start < 200


@pytest.mark.slow
def test_wandb_with_an_unreachable_server_falls_back_to_offline_in_bounded_time(tmp_path):
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env |= {"HOME": str(tmp_path), "PYTHONPATH": str(ROOT / "src"), "WANDB_API_KEY": "k" * 40}
    env |= {"WANDB_BASE_URL": "http://127.0.0.1:9", "WANDB_HTTP_TIMEOUT": "2"}  # port 9: nothing listens
    # the login itself is timed inside the child: importing torch, Lightning and W&B is not what is bounded
    code = (
        "import time; from vae.loggers import wandb_offline_reason; start = time.monotonic(); "
        "print(wandb_offline_reason()); print(f'login_s={time.monotonic() - start:.1f}')"
    )
    command = [sys.executable, "-c", code]
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)  # a hang fails
    assert result.returncode == 0, result.stderr[-2000:]
    assert "cannot be reached" in result.stdout
    login_s = float(result.stdout.rsplit("login_s=", 1)[1])
    assert login_s < 45, result.stdout


def test_a_dead_server_is_named_before_any_login_and_a_proxy_is_left_to_the_login(monkeypatch):
    from vae.loggers import server_unreachable

    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_HTTP_TIMEOUT", "2")
    reason = server_unreachable("http://127.0.0.1:9")  # port 9: nothing listens
    assert reason and "127.0.0.1:9 cannot be reached" in reason
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # the connection would bypass the proxy: not asked
    assert server_unreachable("http://127.0.0.1:9") is None


def test_a_key_is_found_in_the_environment_or_in_netrc_as_wandb_login_writes_it(monkeypatch, tmp_path):
    from vae.loggers import api_key_given

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert not api_key_given("https://api.wandb.ai")  # no netrc file at all
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    assert api_key_given("https://api.wandb.ai") and not api_key_given("http://127.0.0.1:9")
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert api_key_given("http://127.0.0.1:9")

"""SLURM requeue, simulated here: SLURM's environment variables, a fake `scontrol`, the signals SLURM sends."""

import csv
import os
import signal
from pathlib import Path

import pytest
import torch

from background import finish, start, wait_for
from conftest import TINY
from vae.errors import ConfigError
from vae.run_folder import hold
from vae.slurm import job_id, requeue_argv

JOB = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "train", "SLURM_NTASKS": "1", "SLURM_PROCID": "0",
       "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_NODELIST": "localhost"}  # fmt: skip
REQUEUED = {**JOB, "SLURM_RESTART_COUNT": "1"}


def run_folder(tmp_path: Path, checkpoint: str | None = None) -> Path:
    run_dir = tmp_path / "outputs" / "slurm" / "4242"
    (run_dir / "checkpoints").mkdir(parents=True)
    if checkpoint:
        (run_dir / checkpoint).write_bytes(b"")
    return run_dir


def test_outside_a_batch_job_nothing_changes():
    assert requeue_argv(["latent=2"], {}) == ["latent=2"]
    assert requeue_argv(["latent=2"], {**JOB, "SLURM_JOB_NAME": "interactive"}) == ["latent=2"]
    assert requeue_argv(["-m", "latent=2,3"], REQUEUED) == ["-m", "latent=2,3"]


def test_a_job_runs_in_a_folder_named_by_its_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert requeue_argv(["latent=2"], JOB) == ["latent=2", "hydra.run.dir=outputs/slurm/4242"]
    assert job_id({**JOB, "SLURM_ARRAY_JOB_ID": "40", "SLURM_ARRAY_TASK_ID": "3"}) == "40_3"
    assert requeue_argv(["hydra.run.dir=mine"], JOB) == ["hydra.run.dir=mine"]


def test_a_requeued_job_resumes_from_its_newest_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_dir = run_folder(tmp_path, "checkpoints/last.ckpt")
    assert requeue_argv(["latent=2"], REQUEUED) == ["latent=2", f"resume={run_dir.relative_to(tmp_path)}"]
    hpc = run_dir / "hpc_ckpt_1.ckpt"  # Lightning's, saved on SLURM's warning signal after the last.ckpt
    hpc.write_bytes(b"")
    os.utime(hpc, ns=(os.stat(run_dir / "checkpoints/last.ckpt").st_mtime_ns + 10**9,) * 2)
    assert requeue_argv(["latent=2"], REQUEUED)[-1] == f"ckpt_path='{hpc.relative_to(tmp_path)}'"


def test_a_requeue_before_the_first_checkpoint_starts_again_in_the_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_folder(tmp_path)
    assert requeue_argv(["latent=2"], REQUEUED) == ["latent=2", "hydra.run.dir=outputs/slurm/4242"]


def test_a_requeue_before_the_first_checkpoint_sets_the_first_attempt_aside(tmp_path, monkeypatch):
    """The first attempt started (its .hydra/ and metrics.csv are there) but died before any checkpoint:
    the requeued start gets an empty folder, which hold() accepts; the attempt's files are kept beside it."""
    monkeypatch.chdir(tmp_path)
    run_dir = run_folder(tmp_path)
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "started.yaml").write_text("time: earlier\n")
    (run_dir / "metrics.csv").write_text("step,train/loss\n0,1.0\n")
    with pytest.raises(ConfigError, match="already holds a run"), hold(run_dir, resume=False):
        pass  # what the requeued start met before
    assert requeue_argv(["latent=2"], {**REQUEUED, "SLURM_RESTART_COUNT": "2"}) == ["latent=2", "hydra.run.dir=outputs/slurm/4242"]
    aside = tmp_path / "outputs" / "slurm" / "4242.attempt2"
    assert (aside / "metrics.csv").read_text() == "step,train/loss\n0,1.0\n"
    assert not run_dir.exists()
    run_dir.mkdir()  # as Hydra makes it
    with hold(run_dir, resume=False):
        pass


def test_a_second_run_in_one_job_is_told_to_take_its_own_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_folder(tmp_path, "checkpoints/last.ckpt")
    with pytest.raises(ConfigError, match=r"outputs/slurm/4242 already holds a run of SLURM job 4242.*hydra.run.dir"):
        requeue_argv(["latent=2"], JOB)


def train_steps(run_dir: Path) -> list[int]:
    with open(run_dir / "metrics.csv", newline="") as file:
        return [int(row["step"]) for row in csv.DictReader(file) if row["train/loss"]]


@pytest.mark.slow
def test_lightnings_auto_requeue_continues_in_the_same_folder(tmp_path, monkeypatch):
    """SIGUSR1 (sbatch --signal): Lightning saves hpc_ckpt_1 and calls `scontrol requeue`; SLURM then
    sends SIGTERM; the job starts again with SLURM_RESTART_COUNT=1 and the same command line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"  # what SLURM does on a requeue: remember it, stop the job
    scontrol.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/requeued\nkill -TERM $PPID\n')
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for name, value in JOB.items():
        monkeypatch.setenv(name, value)
    steps, epochs = 12, 2
    args = [*TINY, f"trainer.limit_train_batches={steps}", f"trainer.max_epochs={epochs}",
            "callbacks.steps.every_n_train_steps=2", "+logger.csv.flush_logs_every_n_steps=1",
            "+callbacks.throttle._target_=background.Throttle", "+callbacks.throttle.seconds=0.2"]  # fmt: skip
    run_dir = tmp_path / "outputs" / "slurm" / "4242"

    job = start(tmp_path, *args)
    wait_for(run_dir / "checkpoints" / "last.ckpt", job)
    job.send_signal(signal.SIGUSR1)
    code, err = finish(job)
    assert code == 143, err[-3000:]
    assert (tmp_path / "requeued").read_text().split() == ["requeue", "4242"]
    (hpc,) = run_dir.glob("hpc_ckpt_*.ckpt")
    stopped_at = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert 0 < torch.load(hpc, weights_only=True)["global_step"] <= stopped_at < steps * epochs

    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    code, err = finish(start(tmp_path, *args))
    assert code == 0, err[-3000:]
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == ["slurm"]  # no dated folder: the same one
    assert (run_dir / "results.json").is_file()
    assert train_steps(run_dir) == list(range(steps * epochs))  # every step once, no gap, no repeat
    assert f"resume={run_dir}" in (run_dir / ".hydra" / "overrides.yaml").read_text().replace("'", "")

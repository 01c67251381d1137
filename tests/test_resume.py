"""Resume: a real `src/train.py` killed mid-epoch (SIGKILL) or stopped (SIGTERM) continues in its own folder.

Each resumed run is compared exactly with one uninterrupted run of the same command line.
"""

import csv
import json
import os
import re
import shutil
import signal
from pathlib import Path

import pytest
import torch

from background import finish, start, wait_for, wait_until
from conftest import make_config
from vae.batches import EpochPermutation, TensorBatches
from vae.resume import log_on_into_the_wandb_run, resume_argv
from vae.run_folder import hold

STEPS_PER_EPOCH, EPOCHS = 20, 2
RUN = [  # deterministic, two short epochs, a checkpoint every 5 steps, every step logged and flushed to the CSV
    f"trainer.max_epochs={EPOCHS}",
    f"+trainer.limit_train_batches={STEPS_PER_EPOCH}",
    "+trainer.limit_val_batches=2",
    "+trainer.limit_test_batches=2",
    "trainer.enable_progress_bar=false",
    "trainer.accelerator=cpu",
    "trainer.deterministic=true",
    "trainer.log_every_n_steps=1",
    "+logger.csv.flush_logs_every_n_steps=1",
    "callbacks.steps.every_n_train_steps=5",
    "data.batch_size=32",
    "beta=linear",  # the KL weight depends on the step, so a resume must continue the schedule
    "beta.warmup_steps=30",
]
SLOW = ["+callbacks.throttle._target_=background.Throttle", "+callbacks.throttle.seconds=0.2"]  # 0.2 s a step


def global_step(path: Path) -> int:
    return torch.load(path, weights_only=True)["global_step"]


def train_rows(run_dir: Path) -> dict[int, dict[str, float]]:
    """Per-step training metrics from metrics.csv; a step logged twice is an error."""
    rows = {}
    if not (run_dir / "metrics.csv").exists():
        return rows
    with open(run_dir / "metrics.csv", newline="") as file:
        for row in csv.DictReader(file):
            if row["train/loss"]:
                step = int(row["step"])
                assert step not in rows, f"step {step} logged twice"
                rows[step] = {key: float(row[key]) for key in ("train/loss", "train/kl", "train/beta")}
    return rows


def figures(results: dict) -> dict:
    return {name: value for name, value in results.items() if name.startswith(("test/", "val/"))}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, byte for byte."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, dict]:
    """The run every resumed run must match: (its folder, its results.json)."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    code, err = finish(start(tmp, *RUN, "hydra.run.dir=whole"))
    assert code == 0, err[-3000:]
    return tmp / "whole", json.loads((tmp / "whole" / "results.json").read_text())


@pytest.mark.slow
def test_run_killed_mid_epoch_resumes_to_the_uninterrupted_result_in_a_moved_folder(tmp_path, uninterrupted):
    whole, expected = uninterrupted

    run, last = tmp_path / "run", tmp_path / "run" / "checkpoints" / "last.ckpt"
    killed = start(tmp_path, *RUN, *SLOW, "hydra.run.dir=run")
    wait_for(last, killed)  # the first step checkpoint, mid-epoch
    # and a step past it in metrics.csv, which the resumed run must replace rather than repeat
    wait_until(lambda: max(train_rows(run), default=-1) >= global_step(last), killed, "a row past the checkpoint")
    os.kill(killed.pid, signal.SIGKILL)
    assert finish(killed)[0] == -signal.SIGKILL
    assert 0 < global_step(last) < STEPS_PER_EPOCH and not (run / "results.json").exists()
    # the folder is moved: its checkpoints' saved state names the old one, which must not be used
    run, last = tmp_path / "moved", tmp_path / "moved" / "checkpoints" / "last.ckpt"
    shutil.move(tmp_path / "run", run)

    code, err = finish(start(tmp_path, "resume=moved", "callbacks.throttle.seconds=0"))  # no other override
    assert code == 0, err[-3000:]
    assert global_step(last) == EPOCHS * STEPS_PER_EPOCH
    results = json.loads((run / "results.json").read_text())
    assert figures(results) == figures(expected)
    assert results["checkpoint"] == "checkpoints/best.ckpt"  # relative to the run folder, which moved
    # the CSV was appended to, each step once, and matches the uninterrupted run step for step
    resumed_rows, whole_rows = train_rows(run), train_rows(whole)
    assert sorted(resumed_rows) == list(range(EPOCHS * STEPS_PER_EPOCH))
    for step, metrics in whole_rows.items():
        assert resumed_rows[step] == pytest.approx(metrics, rel=1e-5), step


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_says_how_to_resume(tmp_path):
    # the project's W&B logger, offline: the resumed run must continue under the same id
    wandb = ["logger=wandb", "+logger.wandb.offline=true", "logger.wandb.log_model=false"]
    run = tmp_path / "run"
    no_step_checkpoints = "callbacks.steps.every_n_train_steps=1000"  # so last.ckpt can only be SIGTERM's
    process = start(tmp_path, *RUN, *SLOW, *wandb, no_step_checkpoints, "hydra.run.dir=run")
    wait_for(run / "metrics.csv", process)  # flushed after every step: training is under way
    process.send_signal(signal.SIGTERM)
    code, err = finish(process)

    assert code == 143, err[-3000:]
    message = re.search(r"stopped by SIGTERM at step (\d+); resume with: python \S*train\.py (resume=\S+)", err)
    assert message and "Traceback" not in err, err[-3000:]
    step = int(message.group(1))
    assert 0 < step < STEPS_PER_EPOCH and global_step(run / "checkpoints" / "last.ckpt") == step
    assert not (run / "results.json").exists()

    code, err = finish(start(tmp_path, message.group(2), "callbacks.throttle.seconds=0"))
    assert code == 0, err[-3000:]
    assert global_step(run / "checkpoints" / "last.ckpt") == EPOCHS * STEPS_PER_EPOCH
    assert json.loads((run / "results.json").read_text())["test/elbo"] < 0
    run_ids = {folder.name.rsplit("-", 1)[-1] for folder in (run / "wandb").glob("offline-run-*")}
    assert len(list((run / "wandb").glob("offline-run-*"))) == 2 and len(run_ids) == 1


@pytest.mark.slow
def test_a_finished_run_resumed_in_place_ends_as_it_did_and_a_refused_resume_changes_nothing(uninterrupted):
    run, expected = uninterrupted
    before = snapshot(run)

    # another model; a second run; fewer epochs than it has trained
    for refused in (["resume=whole", "latent=8"], ["hydra.run.dir=whole"], ["resume=whole", "trainer.max_epochs=1"]):
        code, err = finish(start(run.parent, *refused))
        assert code == 2 and "Traceback" not in err, err[-3000:]
        assert len([line for line in err.splitlines() if line.startswith("error: ")]) == 1, err[-3000:]
        assert snapshot(run) == before, refused  # byte for byte: overrides.yaml, metrics.csv, checkpoints
        assert ("cannot change the model: the run was trained with model=mlp latent=20" in err) == ("latent=8" in refused)
        assert ("is already past trainer.max_epochs=1: its checkpoint holds 2 epochs" in err) == ("trainer.max_epochs=1" in refused)

    # nothing is left to train: only the test phase runs again, and draws what it drew the first time
    code, err = finish(start(run.parent, "resume=whole"))
    assert code == 0, err[-3000:]
    assert figures(json.loads((run / "results.json").read_text())) == figures(expected)
    assert (run / ".hydra" / "overrides.yaml").read_bytes() != before[".hydra/overrides.yaml"]  # now with resume=


@pytest.mark.slow
def test_sigterm_in_the_test_phase_says_how_to_resume_and_the_resume_matches(tmp_path, uninterrupted):
    _, expected = uninterrupted
    run = tmp_path / "run"
    slow_test = ["+callbacks.throttle._target_=background.Throttle", "+callbacks.throttle.seconds=0",
                 "+callbacks.throttle.test_seconds=3"]  # fmt: skip
    process = start(tmp_path, *RUN, *slow_test, "hydra.run.dir=run")
    wait_for(run / "testing", process)
    process.send_signal(signal.SIGTERM)
    code, err = finish(process)

    assert code == 143 and "Traceback" not in err, err[-3000:]
    message = re.search(r"stopped by SIGTERM at step (\d+), in the test phase; resume with: python \S*train\.py (resume=\S+)", err)
    assert message, err[-3000:]
    assert int(message.group(1)) == EPOCHS * STEPS_PER_EPOCH and not (run / "results.json").exists()

    code, err = finish(start(tmp_path, message.group(2), "callbacks.throttle.test_seconds=0"))
    assert code == 0, err[-3000:]
    assert figures(json.loads((run / "results.json").read_text())) == figures(expected)


@pytest.mark.slow
def test_a_run_into_a_folder_in_use_is_refused(tmp_path):
    (tmp_path / "busy").mkdir()
    with hold(tmp_path / "busy", resume=False):  # this process holds the folder, as a running run does
        code, err = finish(start(tmp_path, *RUN, "hydra.run.dir=busy"))
    assert code == 2 and "Traceback" not in err, err[-3000:]
    assert f"error: {tmp_path / 'busy'} is in use by another run right now" in err
    assert [path.name for path in (tmp_path / "busy").iterdir()] in ([], ["train.log"])  # nothing written but the log


def test_resume_replays_the_runs_own_overrides_into_its_folder(tmp_path):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text("- latent=2\n- +trainer.limit_train_batches=3\n- seed=1\n")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    argv = resume_argv(["seed=7", f"resume={tmp_path}", "trainer.limit_train_batches=9"])
    assert argv == [
        "seed=7",  # given again: the new value wins
        "latent=2",
        f"resume='{tmp_path}'",
        f"hydra.run.dir='{tmp_path}'",
        "++trainer.limit_train_batches=9",  # a key the run added: the new value replaces it
    ]


def test_a_resume_hands_its_wandb_run_id_to_the_loggers_that_declare_an_id(tmp_path):
    """Whatever a logger's target is called: the node's own `id:` key says it takes a W&B run id."""
    cfg = make_config(tmp_path, ["logger=wandb", "+logger.mine._target_=mypkg.MyWandb", "+logger.mine.id=null"])
    log_on_into_the_wandb_run(cfg, None)  # a run that logged to no W&B run
    assert cfg.logger.wandb.id is None
    log_on_into_the_wandb_run(cfg, "abc123")
    assert cfg.logger.wandb.id == "abc123" and cfg.logger.mine.id == "abc123" and "id" not in cfg.logger.csv


def test_batches_resume_mid_epoch_where_they_stopped():
    images, labels = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1), torch.arange(10)
    batches = TensorBatches(images, labels, batch_size=3, sampler=EpochPermutation(10, True, 0), binarize=False)
    batches.sampler.set_epoch(1)
    epoch = [y.tolist() for _, y in batches]
    iterator = iter(batches)
    next(iterator), next(iterator)
    state = batches.state_dict()

    resumed = TensorBatches(images, labels, batch_size=3, sampler=EpochPermutation(10, True, 0), binarize=False)
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(1)
    assert [y.tolist() for _, y in resumed] == epoch[2:]
    assert len([y for _, y in resumed]) == len(epoch)  # the next pass is a whole epoch again

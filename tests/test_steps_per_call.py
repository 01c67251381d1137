"""steps_per_call > 1: several optimiser steps in one call of Lightning's loop take exactly the steps of one per call.

Each run is compared with the run of one step per call: the same weights bit for bit, the same logged
rows, the same schedule and optimiser state, across epoch ends, step checkpoints and a resume.
"""

import csv
import re
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch

from conftest import TINY, make_config
from vae.errors import ConfigError, RunStopped, TrainingDiverged
from vae.steps_per_call import resolve as steps_per_call
from vae.training import train

RUN = [  # 7 batches an epoch, logs every 3 steps, a checkpoint every 5: calls of 4 must end at all of them
    *TINY,
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=7",
    "trainer.log_every_n_steps=3",
    "callbacks.steps.every_n_train_steps=5",
    "data.binarize=false",  # one step per call fetches the next batch before the step's draws: no shared random stream
    "seed=3",
]
SCHEDULES = {
    "per step, clipped": ["scheduler=warmup_cosine", "scheduler.scheduler.warmup_steps=4", "trainer.gradient_clip_val=0.5"],
    "per epoch": ["scheduler=step", "scheduler.scheduler.step_size=1"],
}


def rows(run_dir: Path) -> list[dict]:
    with open(next(run_dir.rglob("metrics.csv")), newline="") as file:
        return [{k: v for k, v in row.items() if "epoch_time" not in k and "samples_per_s" not in k} for row in csv.DictReader(file)]


def figures(results: dict) -> dict:
    """The measured results, without the checkpoint's path (each run has its own folder)."""
    return {name: value for name, value in results.items() if name != "checkpoint"}


def last(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


def same(a, b) -> bool:
    """Equal, tensors bit for bit, through dicts and lists."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(same, a, b))
    if torch.is_tensor(a):
        return torch.is_tensor(b) and torch.equal(a, b)
    return a == b


def assert_same_training(run: Path, reference: Path) -> None:
    ours, theirs = last(run), last(reference)
    assert ours["global_step"] == theirs["global_step"]
    for part in ("state_dict", "optimizer_states", "lr_schedulers"):
        assert same(ours[part], theirs[part]), part
    assert rows(run) == rows(reference)


@pytest.mark.slow
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_four_steps_per_call_train_as_one_step_per_call(tmp_path, schedule):
    results = {s: train(make_config(tmp_path / s, [*RUN, *SCHEDULES[schedule], f"steps_per_call={s}"])) for s in ("1", "4")}
    assert last(tmp_path / "4")["global_step"] == 14
    assert_same_training(tmp_path / "4", tmp_path / "1")
    assert figures(results["4"]) == figures(results["1"])
    assert [r["step"] for r in rows(tmp_path / "4") if r["train/loss"]] == ["2", "5", "8", "11"]  # every 3 steps


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    """The uninterrupted run (4 steps per call) that each stopped and resumed run must match."""
    folder = tmp_path_factory.mktemp("whole")
    train(make_config(folder, [*RUN, "steps_per_call=4"]))
    return folder


class Crash(L.Callback):
    """Stands for a killed process: fails the run at the first call that ends past step 5's checkpoint."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step > 5:
            raise RuntimeError("crash")


class Sigterm(L.Callback):
    """SIGTERM as Lightning's handler records it, arriving during step 3, inside a call of steps 1 to 4."""

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if trainer.global_step == 2:
            trainer._signal_connector.received_sigterm = True


def resume(folder: Path, steps_per_call: str) -> None:
    """resume=<folder> in-process, where Hydra wrote no overrides.yaml: this test gives the config whole."""
    (folder / ".hydra" / "overrides.yaml").write_text("[]\n")
    train(make_config(folder, [*RUN, f"steps_per_call={steps_per_call}", f"resume={folder}"]))


@pytest.mark.slow
@pytest.mark.parametrize("before,after", [("4", "4"), ("1", "4"), ("4", "1")])
def test_a_run_that_crashed_mid_epoch_resumes_to_the_uninterrupted_run(tmp_path, whole, before, after):
    """Also with another steps_per_call than the crashed run's: its checkpoints carry the step count across."""
    crash = ["+callbacks.crash._target_=test_steps_per_call.Crash"]
    with pytest.raises(RuntimeError, match="crash"):
        train(make_config(tmp_path, [*RUN, *crash, f"steps_per_call={before}"]))
    assert last(tmp_path)["global_step"] == 5  # mid-epoch: 5 of the first epoch's 7 batches
    resume(tmp_path, after)
    assert_same_training(tmp_path, whole)


@pytest.mark.slow
def test_sigterm_inside_a_call_stops_after_that_step_and_resumes_to_the_uninterrupted_run(tmp_path, whole):
    with pytest.raises(RunStopped, match="stopped by SIGTERM at step 3; resume with"):
        train(make_config(tmp_path, [*RUN, "+callbacks.sigterm._target_=test_steps_per_call.Sigterm", "steps_per_call=4"]))
    assert last(tmp_path)["global_step"] == 3
    resume(tmp_path, "4")
    assert_same_training(tmp_path, whole)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["steps_per_call=0"], "steps_per_call=0 is invalid: it must be auto or an integer >= 1"),
        (["steps_per_call=4", "+trainer.accumulate_grad_batches=2"], "cannot accumulate"),
        (["steps_per_call=4", "trainer.gradient_clip_val=1", "trainer.precision=16-mixed"], "cannot clip gradients"),
    ],
)
def test_settings_that_cannot_go_with_several_steps_per_call_are_refused(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        train(make_config(tmp_path, [*TINY, *overrides]))
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.slow
def test_a_diverging_run_stops_at_the_same_step_with_the_same_message_and_checkpoint(tmp_path):
    stopped = {}
    for s in ("1", "4"):
        with pytest.raises(TrainingDiverged) as error:
            train(make_config(tmp_path / s, [*RUN, "optimizer.lr=1e6", "callbacks.steps.every_n_train_steps=2", f"steps_per_call={s}"]))
        stopped[s] = str(error.value), last(tmp_path / s)["global_step"]
    assert stopped["4"] == stopped["1"] and stopped["4"][1] > 0, stopped
    assert all(t.isfinite().all() for t in last(tmp_path / "4")["state_dict"].values())


@pytest.mark.parametrize(
    "overrides,steps",
    [([], 10), (["+trainer.accumulate_grad_batches=2"], 1), (["trainer.gradient_clip_val=1", "trainer.precision=16-mixed"], 1),
     (["trainer.gradient_clip_val=1"], 10), (["steps_per_call=3"], 3)],
)
def test_auto_takes_ten_steps_a_call_unless_the_trainer_needs_its_own_step(tmp_path, overrides, steps):
    assert steps_per_call(make_config(tmp_path, overrides)) == steps


@pytest.mark.slow
def test_auto_gives_way_to_gradient_accumulation(tmp_path):
    results = train(make_config(tmp_path, [*TINY, "+trainer.accumulate_grad_batches=2", "trainer.limit_train_batches=4"]))
    assert last(tmp_path)["global_step"] == 2 and results["test/elbo"] < 0


def test_several_steps_per_call_show_none_of_lightnings_warnings_about_that_path(tmp_path):
    """Lightning calls the batch-iterator step experimental ("here be dragons") and warns of checkpoints in manual
    optimisation: nothing a user can act on, and not shown, in the Python API as on the command line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(make_config(tmp_path, [*TINY, "steps_per_call=4"]))
    said = [str(w.message) for w in caught]
    assert not [m for m in said if re.search("dataloader_iter|dragons|experimental|manual optimization", m)], said

"""SIGTERM at any moment of fitting stops with the promised line and resumes to the uninterrupted run,
validation rows included: inside a validation, on the epoch's last training batch, after the epoch's validation.

A real SIGTERM is sent to this process from a callback at the chosen moment.
"""

import os
import signal
from pathlib import Path

import lightning as L
import pytest
import torch
from test_steps_per_call import rows, same

from conftest import TINY, make_config
from vae.errors import ConfigError, RunStopped
from vae.training import train

RUN = [*TINY, "trainer.max_epochs=3", "trainer.limit_train_batches=6", "trainer.limit_val_batches=3", "seed=5",
       "data.binarize=false", "beta=linear", "beta.warmup_steps=10"]  # fmt: skip
EPOCH = 1  # the stop comes in the second epoch


def send_sigterm(trainer: L.Trainer) -> None:
    os.kill(os.getpid(), signal.SIGTERM)


class InValidation(L.Callback):
    """After the first batch of the second epoch's validation."""

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if trainer.current_epoch == EPOCH and batch_idx == 0 and not trainer.sanity_checking:
            send_sigterm(trainer)


class OnTheLastBatch(L.Callback):
    """During the second epoch's last training batch, before its validation."""

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if trainer.global_step == 6 * (EPOCH + 1) - 1:
            send_sigterm(trainer)


class AfterValidation(L.Callback):
    """At the second epoch's end, after its validation."""

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == EPOCH:
            send_sigterm(trainer)


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("whole")
    return folder, train(make_config(folder, RUN))


def figures(results: dict) -> dict:
    return {name: value for name, value in results.items() if name.startswith(("test/", "val/"))}


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["InValidation", "OnTheLastBatch", "AfterValidation"])
@pytest.mark.parametrize("steps_per_call", ["1", "auto"])
def test_sigterm_resumes_to_the_uninterrupted_run(tmp_path, whole, moment, steps_per_call):
    reference, reference_results = whole
    stopper = [f"+callbacks.stop._target_=test_sigterm.{moment}", f"steps_per_call={steps_per_call}"]
    with pytest.raises(RunStopped, match=r"stopped by SIGTERM at step 12; resume with: .* resume="):
        train(make_config(tmp_path, [*RUN, *stopper]))
    (tmp_path / ".hydra" / "overrides.yaml").write_text("[]\n")  # in-process: no Hydra run wrote it
    results = train(make_config(tmp_path, [*RUN, f"steps_per_call={steps_per_call}", f"resume={tmp_path}"]))

    ours, theirs = (torch.load(f / "checkpoints" / "last.ckpt", weights_only=True) for f in (tmp_path, reference))
    assert ours["global_step"] == theirs["global_step"] == 18
    assert same(ours["state_dict"], theirs["state_dict"]) and same(ours["optimizer_states"], theirs["optimizer_states"])
    val_rows = [row for row in rows(tmp_path) if row.get("val/elbo")]
    assert len(val_rows) == 3  # every epoch's validation, the interrupted one included
    assert rows(tmp_path) == rows(reference)
    assert figures(results) == figures(reference_results)


class FailsBeforeTraining(L.Callback):
    """Stands for whatever fails late in a resume, after the checks and the record: here, as fitting starts."""

    def on_train_start(self, trainer, pl_module):
        raise RuntimeError("late failure")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_a_failed_resume_leaves_the_folder_as_it_was_however_late_it_fails(whole, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(whole[0], run)
    (run / ".hydra").mkdir(exist_ok=True)
    (run / ".hydra" / "overrides.yaml").write_text("[]\n")
    before = snapshot(run)
    with pytest.raises(ConfigError, match=rf"^resume={run} is already past trainer.max_epochs=2: its checkpoint holds 3 epochs; give "):
        train(make_config(run, [*RUN, "trainer.max_epochs=2", f"resume={run}"]))
    assert snapshot(run) == before
    late = [*RUN, "trainer.max_epochs=4", f"resume={run}", "+callbacks.fail._target_=test_sigterm.FailsBeforeTraining"]
    with pytest.raises(RuntimeError, match="late failure"):
        train(make_config(run, late))
    assert snapshot(run) == before

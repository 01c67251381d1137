"""Checkpoint files: a kill mid-write never breaks last.ckpt, loading never runs code, a wrong model is named."""

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from background import finish, start, wait_for
from conftest import TINY, make_config, run_script
from vae.build import load_system
from vae.checkpoints import AtomicCheckpointIO, load_checkpoint
from vae.errors import ConfigError, TrainingDiverged
from vae.system import VAE
from vae.training import train


class RunsCode:
    """Unpickling this calls os.system: what a malicious checkpoint would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def writing_into(pid: int, folder: Path) -> bool:
    """Whether the process holds a file under `folder` open: a checkpoint write is under way."""
    targets = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            targets.append(os.readlink(fd))
    return any(target.startswith(f"{folder}/") for target in targets)


@pytest.mark.slow
def test_kill_during_a_checkpoint_write_leaves_a_loadable_last_ckpt(tmp_path):
    big_and_saved_every_step = [  # ~60 MB checkpoints written every step: most of the run is spent saving
        *TINY,
        "trainer.limit_train_batches=50",
        "model.hidden=[3000]",
        "callbacks.steps.every_n_train_steps=1",
        "hydra.run.dir=run",
    ]
    folder = tmp_path / "run" / "checkpoints"
    process = start(tmp_path, *big_and_saved_every_step)
    try:
        wait_for(folder / "last.ckpt", process)
        time.sleep(1.0)  # several saves in: last.ckpt has been replaced a few times
        deadline = time.monotonic() + 60
        while True:  # freeze the run; if it is writing a checkpoint, kill it there
            os.kill(process.pid, signal.SIGSTOP)
            if writing_into(process.pid, folder):
                break
            os.kill(process.pid, signal.SIGCONT)
            assert process.poll() is None, finish(process)[1][-3000:]
            assert time.monotonic() < deadline, "no checkpoint write was caught"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
    assert finish(process)[0] == -signal.SIGKILL

    checkpoint = load_checkpoint(folder / "last.ckpt")
    assert checkpoint["global_step"] >= 1
    assert all(t.isfinite().all() for t in checkpoint["state_dict"].values())


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path):
    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"global_step": 1, "state_dict": {"w": torch.ones(3)}}, path)
    with pytest.raises(Exception):
        io.save_checkpoint({"global_step": 2, "state_dict": {"w": torch.ones(3)}, "bad": lambda: 0}, path)
    assert io.load_checkpoint(path)["global_step"] == 1


def test_non_finite_weights_are_never_written(tmp_path):
    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"global_step": 1, "state_dict": {"w": torch.ones(3)}}, path)
    with pytest.raises(TrainingDiverged, match="step 2.*was not written"):
        io.save_checkpoint({"global_step": 2, "state_dict": {"w": torch.tensor([1.0, float("nan")])}}, path)
    assert io.load_checkpoint(path)["state_dict"]["w"].tolist() == [1.0, 1.0, 1.0]


@pytest.mark.slow
def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, run_cli):
    marker = tmp_path / "code-ran"
    crafted = tmp_path / "crafted.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": RunsCode(marker)}, crafted)

    # ours, Lightning's plugin, eval's, Lightning's usual loader
    for load in (load_checkpoint, AtomicCheckpointIO().load_checkpoint, load_system, VAE.load_from_checkpoint):
        with pytest.raises(ConfigError, match="refused: it asks to call .*system"):
            load(crafted)
    result = run_cli(*TINY, f"ckpt_path={crafted}")  # fit from it
    assert result.returncode == 2
    assert f"error: ckpt_path={crafted} is refused" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


def test_a_checkpoint_of_another_model_says_which_config_it_needs(tmp_path):
    train(make_config(tmp_path / "a", [*TINY, "model=conv", "latent=16"]))
    checkpoint = tmp_path / "a" / "checkpoints" / "last.ckpt"

    with pytest.raises(ConfigError) as error:
        train(make_config(tmp_path / "b", [*TINY, f"ckpt_path={checkpoint}"]))
    assert str(error.value) == (
        f"ckpt_path={checkpoint} was trained with model=conv latent=16 data=mnist5k, but this run has "
        "model=mlp latent=20 data=mnist5k: add model=conv latent=16 data=mnist5k to the command line "
        "(or use resume=<run folder>, which reuses a run's config)"
    )
    assert not (tmp_path / "b" / "results.json").exists()
    system, cfg = load_system(checkpoint)  # the checkpoint itself is fine: eval rebuilds its own model
    lightning_way = VAE.load_from_checkpoint(checkpoint)  # and Lightning's usual loader agrees
    assert all(torch.equal(a, b) for a, b in zip(system.state_dict().values(), lightning_way.state_dict().values()))
    assert cfg.latent == 16 and system.latent_dim == 16


@pytest.mark.slow
def test_a_checkpoint_from_before_the_model_zoo_stops_with_one_line(tmp_path, run_cli):
    old = tmp_path / "old.ckpt"  # the layout version 0.1 wrote: no family, posterior or prior in its config
    config = {"model": {"encoder": {"_target_": "vae.models.MLPEncoder"}}, "latent": 20, "data": {"source": "mnist5k"}}
    torch.save({"state_dict": {"encoder.net.1.weight": torch.zeros(400, 784)}, "hyper_parameters": {"config": config}}, old)
    with pytest.raises(ConfigError, match=r"is from an earlier version of vae \(0.1, before the model zoo\)"):
        load_system(old)
    result = run_cli(*TINY, f"ckpt_path={old}")
    assert result.returncode == 2 and "error: ckpt_path=" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_checkpoint_of_another_width_names_the_setting_and_an_edited_one_is_refused(tmp_path):
    train(make_config(tmp_path / "a", [*TINY, "model.hidden=[64]"]))
    checkpoint = tmp_path / "a" / "checkpoints" / "last.ckpt"

    with pytest.raises(ConfigError) as error:  # same family, same latent: only the width differs
        train(make_config(tmp_path / "b", [*TINY, f"ckpt_path={checkpoint}"]))
    assert str(error.value).startswith(
        f"ckpt_path={checkpoint} was trained with model.hidden=[64], but this run has "
        "model.hidden=[400]: add model.hidden=[64] to the command line"
    )
    train(make_config(tmp_path / "c", [*TINY, f"ckpt_path={checkpoint}", "model.hidden=[64]"]))  # as advised

    edited = torch.load(checkpoint, weights_only=True)
    edited["hyper_parameters"]["config"]["data"]["source"] = "fashion_mnist"  # same shapes, other data
    torch.save(edited, tmp_path / "edited.ckpt")
    with pytest.raises(ConfigError, match="edited.ckpt was altered: the config stored in it .* no longer matches"):
        load_system(tmp_path / "edited.ckpt")


@pytest.mark.slow
def test_eval_refuses_non_finite_weights(tmp_path):
    train(make_config(tmp_path / "a", TINY))
    checkpoint = torch.load(tmp_path / "a" / "checkpoints" / "last.ckpt", weights_only=True)
    name = next(iter(checkpoint["state_dict"]))
    checkpoint["state_dict"][name][0] = float("nan")
    torch.save(checkpoint, tmp_path / "nan.ckpt")  # written past our checks, as a damaged copy would be

    result = run_script("eval.py", f"ckpt_path={tmp_path / 'nan.ckpt'}", "nll_samples=2", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"error: ckpt_path={tmp_path / 'nan.ckpt'} holds non-finite weights ({name} has NaN or inf)" in result.stderr
    assert not (tmp_path / "results.json").exists()


def test_a_checkpoint_with_another_discriminator_names_the_objectives_setting(tmp_path):
    """An objective's own parts (FactorVAE's discriminator) are weights too: a width change is named, not called damage."""
    train(make_config(tmp_path / "a", [*TINY, "objective=factor_vae", "objective.discriminator_hidden=16"]))
    checkpoint = tmp_path / "a" / "checkpoints" / "last.ckpt"

    with pytest.raises(ConfigError) as error:
        train(make_config(tmp_path / "b", [*TINY, "objective=factor_vae", f"ckpt_path={checkpoint}"]))
    assert str(error.value).startswith(
        f"ckpt_path={checkpoint} was trained with objective.discriminator_hidden=16, but this run has "
        "objective.discriminator_hidden=256: add objective.discriminator_hidden=16"
    )
    assert not (tmp_path / "b" / "results.json").exists()

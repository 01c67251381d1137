"""Optimisers, learning-rate schedules, gradient clipping and early stopping, as config groups."""

import csv

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import CONF, TINY, make_config
from vae.optim import optimizers, warmup_cosine
from vae.training import train

OPTIMIZERS = sorted(p.stem for p in (CONF / "optimizer").glob("*.yaml"))


def test_early_stopping_ends_a_run_that_stops_improving(tmp_path):
    patience, max_epochs = 2, 8
    # a rate of 0: the model never improves; val/elbo still moves by the noise of its one z draw per image
    overrides = [*TINY, "callbacks=[no_pictures,early_stopping]", f"callbacks.early_stopping.patience={patience}",
                 "callbacks.early_stopping.min_delta=10", f"trainer.max_epochs={max_epochs}", "optimizer.lr=0"]  # fmt: skip
    train(make_config(tmp_path, overrides))
    with open(tmp_path / "metrics.csv", newline="") as file:
        epochs = {int(row["epoch"]) for row in csv.DictReader(file) if row["val/elbo"]}
    assert len(epochs) == patience + 1 < max_epochs


def test_gradient_clipping_reaches_the_trainer_or_the_systems_own_steps(tmp_path):
    """One step a call: Lightning clips. Several: the system clips in its own steps, and Lightning must not be
    told (it refuses to in manual optimisation); test_steps_per_call compares the two runs' weights bit for bit."""
    from vae.training import build_trainer

    clipped = [*TINY, "trainer.gradient_clip_val=0.5"]
    assert build_trainer(make_config(tmp_path, TINY)).gradient_clip_val is None
    assert build_trainer(make_config(tmp_path, [*clipped, "steps_per_call=1"])).gradient_clip_val == 0.5
    assert build_trainer(make_config(tmp_path, clipped)).gradient_clip_val is None


@pytest.mark.parametrize("warmup, total, floor", [(10, 50, 0.0), (3, 40, 0.1), (0, 20, 0.0)])
def test_warmup_cosine_matches_torchs_linear_then_cosine_schedulers(warmup, total, floor):
    base = 0.5
    ours = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    theirs = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    mine = warmup_cosine(ours, warmup, total, floor)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(theirs, T_max=total - warmup, eta_min=floor * base)
    if warmup:
        linear = torch.optim.lr_scheduler.LinearLR(theirs, start_factor=1 / (warmup + 1), total_iters=warmup)
        oracle = torch.optim.lr_scheduler.SequentialLR(theirs, [linear, cosine], milestones=[warmup])
    else:
        oracle = cosine
    for _ in range(total + 1):
        assert ours.param_groups[0]["lr"] == pytest.approx(theirs.param_groups[0]["lr"], abs=1e-9)
        ours.step(), theirs.step(), mine.step(), oracle.step()


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_optimizer_is_a_partial_the_parameters_complete(tmp_path, name):
    cfg = make_config(tmp_path, [f"optimizer={name}", "optimizer.lr=0.125"])
    net = torch.nn.Linear(3, 2)
    optimizer = optimizers(OmegaConf.to_container(cfg, resolve=True), net.parameters())
    assert type(optimizer).__name__.lower() == name and optimizer.param_groups[0]["lr"] == 0.125
    assert {id(p) for p in optimizer.param_groups[0]["params"]} == {id(p) for p in net.parameters()}


SCHEDULES = {  # few steps each, so that 2 epochs of 3 steps see the rate move
    "cosine": [],
    "step": ["scheduler.scheduler.step_size=1"],
    "warmup": ["scheduler.scheduler.total_iters=10", "scheduler.scheduler.start_factor=0.5"],
    "warmup_cosine": ["scheduler.scheduler.warmup_steps=2", "scheduler.scheduler.min_factor=0.1"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_a_schedule_moves_the_rate_at_its_interval(tmp_path, name):
    overrides = [*TINY, f"scheduler={name}", *SCHEDULES[name], "trainer.max_epochs=2", "optimizer.lr=0.01"]
    cfg = make_config(tmp_path, overrides)
    train(cfg)
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    steps, epochs = cfg.trainer.limit_train_batches * cfg.trainer.max_epochs, cfg.trainer.max_epochs
    # the oracle: the same scheduler on a bare optimiser, stepped as often as the run's interval says
    oracle = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.optimizer.lr)
    schedule = OmegaConf.to_container(cfg.scheduler, resolve=True)
    kwargs = {"total_steps": steps} if schedule["scheduler"].get("total_steps", 0) is None else {}
    scheduler = instantiate(schedule["scheduler"])(oracle, **kwargs)
    for _ in range(steps if schedule["interval"] == "step" else epochs):
        oracle.step(), scheduler.step()
    lr = state["optimizer_states"][0]["param_groups"][0]["lr"]
    assert lr == pytest.approx(oracle.param_groups[0]["lr"]) and lr != pytest.approx(cfg.optimizer.lr)

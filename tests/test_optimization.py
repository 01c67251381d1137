"""Optimisers, learning-rate schedules, gradient clipping and early stopping, as config groups."""

import csv

import pytest
import torch

from conftest import CONF, TINY, make_config
from vae.optim import warmup_cosine
from vae.training import train

OPTIMIZERS = sorted(p.stem for p in (CONF / "optimizer").glob("*.yaml"))


def test_early_stopping_ends_a_run_that_stops_improving(tmp_path):
    patience, max_epochs = 2, 8
    # a rate of 0: the model never improves; val/elbo still moves by the noise of its one z draw per image
    overrides = [*TINY, "callbacks=[no_pictures,early_stopping]", f"callbacks.early_stopping.patience={patience}",
                 "callbacks.early_stopping.min_delta=10", f"trainer.max_epochs={max_epochs}", "optim.lr=0"]  # fmt: skip
    train(make_config(tmp_path, overrides))
    with open(tmp_path / "metrics.csv", newline="") as file:
        epochs = {int(row["epoch"]) for row in csv.DictReader(file) if row["val/elbo"]}
    assert len(epochs) == patience + 1 < max_epochs


def test_gradient_clipping_reaches_the_trainer(tmp_path):
    from vae.training import build_trainer

    assert build_trainer(make_config(tmp_path, TINY)).gradient_clip_val is None
    assert build_trainer(make_config(tmp_path, [*TINY, "trainer.gradient_clip_val=0.5"])).gradient_clip_val == 0.5


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

"""Optimisers, learning-rate schedules, gradient clipping and early stopping, as config groups."""

import csv

from conftest import TINY, make_config
from vae.training import train


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

"""Beta schedules and the capacity objective: the value at chosen steps, and a clear error for bad settings."""

import pytest
import torch

from vae.draw import Draw
from vae.errors import ConfigError
from vae.objectives.capacity import Capacity
from vae.schedules import Constant, Cyclical, Linear


def test_constant():
    assert [Constant(0.5).beta(s) for s in (0, 10, 10**6)] == [0.5, 0.5, 0.5]
    assert Constant(0.5).fixed() == 0.5 and Linear().fixed() is None and Cyclical().fixed() is None


def test_linear_warmup():
    schedule = Linear(warmup_steps=100, start=0.0, end=1.0)
    assert [schedule.beta(s) for s in (0, 25, 50, 100, 5000)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    assert Linear(warmup_steps=0).beta(0) == 1.0


def test_cyclical_repeats_its_ramp():
    schedule = Cyclical(cycle_steps=100, ratio=0.5, start=0.0, end=1.0)
    assert [schedule.beta(s) for s in (0, 25, 50, 99, 100, 125, 250)] == [0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0]


def test_capacity_rises_then_holds_and_the_loss_pulls_the_kl_to_it():
    objective = Capacity(gamma=10.0, max_capacity=20.0, capacity_steps=100)
    assert [objective.capacity(s) for s in (0, 50, 100, 1000)] == [0.0, 10.0, 20.0, 20.0]
    kl = torch.tensor([4.0, 16.0])
    draw = Draw(torch.full((1, 2), -3.0), torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2, 1), kl=kl)
    terms = objective(draw, step=50)  # C = 10: 3 + 10 * |4 - 10|, 3 + 10 * |16 - 10|
    torch.testing.assert_close(terms["loss"], torch.tensor([63.0, 63.0]))
    assert terms["capacity"] == 10.0 and "beta" not in terms


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: Linear(warmup_steps=-1), "beta.warmup_steps=-1"),
        (lambda: Cyclical(cycle_steps=0), "beta.cycle_steps=0"),
        (lambda: Cyclical(ratio=1.5), "beta.ratio=1.5"),
        (lambda: Constant(-1.0), "beta.value=-1.0"),
        (lambda: Capacity(capacity_steps=-5), "objective.capacity_steps=-5"),
    ],
)
def test_bad_settings_name_the_value(make, name):
    with pytest.raises(ConfigError, match=name):
        make()

"""The new objectives in the real config: each trains a few steps on the embedded default data with finite
figures, and each family or part it cannot work with refuses it in one line naming the setting and why.
"""

import math
import re

import pytest
from omegaconf import OmegaConf

from conftest import TINY, make_config
from vae.errors import user_error_message
from vae.system import System
from vae.training import train

SMALL = ["model.hidden=[16]", "latent=3"]
RUNS = {  # one short training per objective and estimator, with the figure each logs of its own
    "wae": (["objective=wae", "objective.kernel=rbf"], "test/mmd"),
    "infovae": (["objective=infovae", "objective.lam=10"], "test/mmd"),
    "dip_vae-i": (["objective=dip_vae"], "test/dip"),
    "dip_vae-ii": (["objective=dip_vae", "objective.type=ii"], "test/dip"),
    "miwae": (["objective=miwae", "objective.m=2", "objective.k=2"], "test/miwae"),
    "piwae": (["objective=piwae", "objective.m=2", "objective.k=2"], "test/miwae"),
    "ciwae": (["objective=ciwae", "objective.k=3"], "test/ciwae"),
    "iwae-dreg": (["objective=iwae", "objective.k=3", "objective.gradient=dreg"], "test/iwae"),
    "iwae-stl": (["objective=iwae", "objective.k=3", "objective.gradient=stl"], "test/iwae"),
    "elbo-stl": (["objective=elbo", "objective.gradient=stl"], "test/elbo"),
}


FAST = ("piwae",)  # a gradient routed in the step, the newest wiring; the rest (WAE's prior draws too): make test-full


@pytest.mark.parametrize("run", [r if r in FAST else pytest.param(r, marks=pytest.mark.slow) for r in RUNS])
def test_each_new_objective_trains_a_few_steps(tmp_path, run):
    overrides, own_figure = RUNS[run]
    results = train(make_config(tmp_path, [*TINY, *SMALL, *overrides]))
    assert math.isfinite(results["test/elbo"]) and results["test/elbo"] < 0
    assert math.isfinite(results[own_figure])


REFUSALS = [
    (["objective=wae", "prior=mog"], r"^objective=wae needs prior=standard_normal: its MMD penalty compares"),
    (["objective=dip_vae", "posterior=iaf"], r"^objective=dip_vae needs posterior=gaussian: "),
    (["objective=dip_vae", "prior=vamp", "prior.components=2"], r"^objective=dip_vae needs prior=standard_normal: "),
    (["objective=iwae", "objective.gradient=dreg", "posterior=iaf"],
     r"^objective=iwae objective.gradient=dreg needs posterior=gaussian: it evaluates q\(z\|x\) with its parameters stopped"),
    (["objective=elbo", "objective.gradient=stl", "family=hvae"], r"^objective=elbo objective.gradient=stl does not fit family=hvae: "),
    (["objective=wae", "family=ladder"], r"^objective=wae does not fit family=ladder: "),
    (["objective=elbo", "objective.gradient=stl", "family=vqvae"], r"^objective=elbo objective.gradient=stl does not fit family=vqvae: "),
    (["objective=miwae", "family=vqvae"], r"^family=vqvae takes objective=elbo with objective.k=1, not objective=miwae objective.k=64"),
    (["objective=wae", "beta=linear"], r"^beta=linear does not apply to objective=wae: "),
    (["objective=piwae", "beta=linear"], r"^beta=linear does not apply to objective=piwae: "),
    (["objective=infovae", "objective.kernel=cubic"], r"objective.kernel=cubic is unknown: choose one of imq, rbf"),
    (["objective=iwae", "objective.gradient=reinforce"], r"objective.gradient=reinforce does not apply to objective=iwae: choose one of"),
]  # fmt: skip


@pytest.mark.parametrize("overrides, message", REFUSALS)
def test_what_an_objective_cannot_work_with_is_refused_in_one_line(tmp_path, overrides, message):
    with pytest.raises(Exception) as caught:  # a constructor's error arrives wrapped by Hydra's instantiate
        System(OmegaConf.to_container(make_config(tmp_path, [*SMALL, *overrides]), resolve=True))
    assert re.search(message, user_error_message(caught.value)), user_error_message(caught.value)


def test_the_infovae_kl_takes_the_schedule_and_the_existing_defaults_are_unchanged(tmp_path):
    def objective(*overrides):
        return System(OmegaConf.to_container(make_config(tmp_path, [*SMALL, *overrides]), resolve=True)).objective

    assert objective("objective=infovae", "beta=linear").schedule.beta(0) == 0.0
    assert objective().gradient == "reparam" and objective("objective=iwae").gradient == "reparam"

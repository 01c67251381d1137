"""Every option of every config group composes and instantiates; `latent` reaches every model."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from conftest import CONF, make_config
from vae.build import build_system, build_trainer
from vae.data import DatasetData, ImageData


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_groups_hold_the_designed_options():
    assert options("model") == ["burda", "conv", "mlp", "resnet"]
    assert options("family") == ["cvae", "hvae", "ladder", "vae", "vqvae"]
    assert options("posterior") == ["deterministic", "gaussian", "hamiltonian", "iaf", "planar", "radial", "vmf"]
    assert options("prior") == ["mog", "standard_normal", "uniform_sphere", "vamp"]
    assert options("likelihood") == ["bernoulli", "gaussian", "logistic_mixture", "msssim"]
    assert options("objective") == ["aae", "ae", "beta_tcvae", "capacity", "ciwae", "dip_vae", "elbo", "factor_vae",
                                    "infovae", "iwae", "miwae", "piwae", "rae", "swae", "wae"]  # fmt: skip
    assert options("beta") == ["constant", "cyclical", "linear"]
    assert set(options("data")) >= {"mnist5k", "mnist", "fashion_mnist", "kmnist", "cifar10", "folder"}
    assert options("trainer") == ["cpu", "ddp", "default", "gpu"]


@pytest.mark.parametrize("model", ["mlp", "conv"])
@pytest.mark.parametrize("data", options("data"))
@pytest.mark.parametrize("latent", [1, 16])
def test_model_and_data_compose_into_a_system(tmp_path, model, data, latent):
    given = {"folder": ["data.path=unused"], "dataset": ["data.dataset._target_=conftest.RandomImages"]}.get(data, [])
    cfg = make_config(tmp_path, [f"model={model}", f"data={data}", f"latent={latent}", *given])
    datamodule = instantiate(cfg.data)
    assert isinstance(datamodule, DatasetData if data == "dataset" else ImageData)
    system = build_system(cfg)
    x = torch.rand(2, *datamodule.shape)
    draw = system.model.draw(x)
    assert draw.z.shape == (1, 2, latent) and draw.log_px_z.shape == (1, 2)
    assert system.decode(system.encode(x)).shape == x.shape


@pytest.mark.parametrize("data, likelihood", [("mnist5k", "Bernoulli"), ("cifar10", "Gaussian"), ("folder", "Gaussian")])
def test_each_data_config_picks_its_likelihood_and_the_command_line_wins(tmp_path, data, likelihood):
    assert make_config(tmp_path, [f"data={data}"]).likelihood._target_.endswith(likelihood)
    chosen = make_config(tmp_path, [f"data={data}", "likelihood=logistic_mixture"]).likelihood._target_
    assert chosen.endswith("LogisticMixture")


@pytest.mark.parametrize("beta", options("beta"))
def test_beta_schedules_instantiate(tmp_path, beta):
    schedule = instantiate(make_config(tmp_path, [f"beta={beta}"]).beta)
    values = [schedule.beta(step) for step in range(0, 20_000, 97)]
    assert min(values) >= 0 and max(values) > 0


@pytest.mark.parametrize("trainer", ["cpu", "default", "ddp"])
@pytest.mark.parametrize("precision", ["32", "bf16-mixed"])
def test_trainers_instantiate(tmp_path, trainer, precision):
    overrides = [f"trainer={trainer}", f"trainer.precision={precision}", "trainer.accelerator=cpu"]
    built = build_trainer(make_config(tmp_path, overrides))
    assert built.max_epochs == 50 and str(built.precision).startswith(precision)
    assert Path(built.default_root_dir) == tmp_path


def test_gpu_trainer_asks_for_a_gpu(tmp_path):
    cfg = make_config(tmp_path, ["trainer=gpu", "trainer.precision=16-mixed"])
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.precision == "16-mixed"

"""The Python API (vae.api, exported by `vae`): the example in docs/api.md runs, and each function keeps its word."""

import re
from pathlib import Path

import pytest
import torch

import vae
from conftest import ROOT


def readme_example() -> str:
    text = (ROOT / "docs" / "api.md").read_text()
    section = text.split("## In Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The example of docs/api.md, run as written in a fresh folder: its variables."""
    cwd = tmp_path_factory.mktemp("notebook")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        namespace: dict = {}
        exec(readme_example(), namespace)
    return namespace, cwd


def test_the_readme_example_trains_loads_and_draws(trained):
    ns, cwd = trained
    model, x = ns["model"], ns["x"]
    assert ns["results"]["test/elbo"] < 0
    assert not model.training and ns["z"].shape == (len(x), model.latent_dim)
    assert ns["x_hat"].shape == x.shape and 0 <= ns["x_hat"].min() and ns["x_hat"].max() <= 1
    assert ns["images"].shape == (16, *x.shape[1:])
    assert ns["metrics"]["test/elbo"] == pytest.approx(-(ns["metrics"]["test/rec"] + ns["metrics"]["test/kl"]), rel=1e-4)
    assert {p.name for p in ns["paths"]} >= {"samples.png", "reconstructions.png"}
    assert all(Path(cwd, p).is_file() for p in ns["paths"])


def test_load_gives_the_checkpoints_weights(trained):
    ns, cwd = trained
    saved = torch.load(cwd / ns["checkpoint"], weights_only=True)["state_dict"]
    loaded = vae.load(cwd / ns["checkpoint"], device="cpu").state_dict()
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved)


def test_uint8_images_count_as_pixels_over_255(trained):
    model, x = trained[0]["model"], trained[0]["x"]
    pixels = (x * 255).round().to(torch.uint8)
    assert torch.allclose(vae.encode(model, pixels), vae.encode(model, pixels.float() / 255))
    assert torch.equal(vae.reconstruct(model, x), vae.decode(model, vae.encode(model, x)))


def test_a_seed_repeats_the_samples_and_another_changes_them(trained):
    model = trained[0]["model"]
    assert torch.equal(vae.sample(model, 4, seed=1), vae.sample(model, 4, seed=1))
    assert not torch.equal(vae.sample(model, 4, seed=1), vae.sample(model, 4, seed=2))


def test_the_importance_weighted_bound_is_tighter_than_the_elbo(trained):
    metrics = trained[0]["metrics"]  # log p(x) >= ELBO, and the k-sample estimate sits between them
    assert metrics["test/nll"] <= -metrics["test/elbo"]


def test_compose_is_what_the_command_runs(tmp_path):
    cfg = vae.compose(["experiment=conv16", "latent=3"], output_dir=tmp_path)
    assert cfg.latent == 3 and "Conv" in cfg.model.encoder._target_ and cfg.paths.output_dir == str(tmp_path)


def test_lightnings_load_from_checkpoint_gives_the_same_model(trained):
    from vae.system import VAE

    ns, cwd = trained
    model = VAE.load_from_checkpoint(cwd / ns["checkpoint"], map_location="cpu").eval()
    x = ns["x"]
    assert torch.equal(vae.encode(model, x), vae.encode(ns["model"].cpu(), x))


def test_no_exported_name_is_hidden_by_a_module_of_the_same_name():
    modules = {p.stem for p in (ROOT / "src" / "vae").iterdir() if p.suffix == ".py" or p.is_dir()}
    assert not set(vae.__all__) & modules
    assert all(callable(getattr(vae, name)) for name in vae.__all__)

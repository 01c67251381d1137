"""The family interface (vae.families.base.Family): callers ask the family and never probe it.

A family written here against the interface alone trains, tests, reports log p(x), samples, is
evaluated, drawn and judged by FID like the built-in ones; every built-in family works through every
entry point (the API, src/sample.py, src/eval.py with sample-quality metrics); no caller module
probes a family; each knob means one thing.
"""

import ast
import json
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import Tensor, nn
from torch.distributions import Normal

import vae
from conftest import ROOT, TINY, WITH_PICTURES, make_config, run_script
from vae.assemble import check_new_run
from vae.draw import Draw
from vae.errors import ConfigError, user_error_message
from vae.families.base import Family
from vae.system import VAE, System
from vae.training import train


class TinyFamily(Family):
    """A linear Gaussian VAE written against the interface alone: no part of the zoo, no config group of its own."""

    def __init__(self, shape: tuple[int, int, int], latent: int):
        super().__init__()
        self.shape, self.latent = shape, latent
        pixels = shape[0] * shape[1] * shape[2]
        self.encoder, self.decoder = nn.Linear(pixels, 2 * latent), nn.Linear(latent, pixels)
        self.register_buffer("anchor", torch.zeros(()))

    @classmethod
    def from_config(cls, cfg: DictConfig, shape: tuple[int, int, int]) -> "TinyFamily":
        return cls(shape, cfg.latent)

    @property
    def latent_dim(self) -> int:
        return self.latent

    def posterior(self, x: Tensor) -> Normal:
        mu, logvar = self.encoder(x.flatten(1)).float().chunk(2, dim=-1)
        return Normal(mu, (0.5 * logvar).exp())

    def draw(self, x: Tensor, y: Tensor | None = None, k: int = 1) -> Draw:
        q = self.posterior(x)
        z = q.rsample((k,))  # (K, B, D)
        logits = self.decoder(z).view(k, *x.shape)  # (K, B, C, H, W)
        log_px_z = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").flatten(2).sum(-1)
        return Draw(log_px_z, Normal(0.0, 1.0).log_prob(z).sum(-1), q.log_prob(z).sum(-1), z)

    def encode(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.posterior(x).mean

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return torch.sigmoid(self.decoder(z)).view(len(z), *self.shape)

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.latent, generator=generator).to(self.anchor.device)


SAMPLE_QUALITY = {"test/fid", "test/fid_reference", "test/precision", "test/recall", "test/feature_net_accuracy"}


def test_a_family_written_against_the_interface_alone_runs_everywhere(tmp_path):
    args = [*TINY, *WITH_PICTURES, f"family._target_={__name__}.TinyFamily", "latent=3", "nll_samples=4",
            "metrics=[fid,precision_recall]"]  # fmt: skip
    results = train(make_config(tmp_path, args))  # train, test, log p(x), pictures, FID
    assert math.isfinite(results["test/nll"]) and results["test/nll"] > 0
    assert SAMPLE_QUALITY <= set(results) and results["test/active_units"] >= 0 and "test/kl_per_dim" not in results
    assert {p.stem for p in (tmp_path / "images").glob("*.png")} >= {"samples", "reconstructions", "traversals", "interpolations"}

    model = vae.load(tmp_path / "checkpoints" / "best.ckpt", device="cpu", trust=[f"{__name__}.TinyFamily"])  # not vae's own
    assert isinstance(model.model, TinyFamily)
    images = vae.sample(model, 4, seed=0)
    assert images.shape == (4, 1, 28, 28) and torch.equal(images, vae.sample(model, 4, seed=0))
    assert math.isfinite(vae.evaluate(model, nll_samples=2)["test/nll"])
    assert {p.stem for p in vae.draw_pictures(model, tmp_path / "drawn", n=4)} >= {"samples", "reconstructions"}


def test_a_target_that_is_no_family_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^family._target_=torch.nn.Linear is not a model family: give a subclass of "):
        System(OmegaConf.to_container(make_config(tmp_path, ["family._target_=torch.nn.Linear"]), resolve=True))


FAMILIES = {
    "vae": ["latent=3"],
    "hvae": ["model=mlp", "model.hidden=[16]", "family.latents=[4,3]", "family.hidden=[8]"],
    "cvae": ["latent=3"],
    "vqvae": ["latent=3", "family.codes=4", "family.codebook_size=8"],
}


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_works_through_every_entry_point(tmp_path, family):
    train(make_config(tmp_path, [*TINY, f"family={family}", *FAMILIES[family], "nll_samples=2"]))
    ckpt = tmp_path / "checkpoints" / "best.ckpt"
    model = vae.load(ckpt, device="cpu")
    x, y = torch.rand(5, 1, 28, 28), torch.tensor([0, 1, 2, 3, 7])
    labels = {"y": y} if family == "cvae" else {}
    assert vae.sample(model, 4, seed=0).shape == (4, 1, 28, 28)  # a conditional family: its classes in turn
    assert vae.encode(model, x, **labels).shape == (5, model.latent_dim)
    assert vae.reconstruct(model, x, **labels).shape == x.shape
    assert vae.decode(model, vae.encode(model, x, **labels), **labels).shape == x.shape

    label = ["label=7"] if family == "cvae" else []
    result = run_script("sample.py", f"ckpt_path={ckpt}", "n=4", *label, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "samples" / ("samples_label7.png" if label else "samples.png")).is_file()
    result = run_script("eval.py", f"ckpt_path={ckpt}", "nll_samples=2", "metrics=[fid,precision_recall]", "device=cpu", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert SAMPLE_QUALITY <= set(json.loads((tmp_path / "results.json").read_text()))


def test_a_conditional_family_without_labels_says_so_in_one_line(tmp_path):
    model = System(OmegaConf.to_container(make_config(tmp_path, ["family=cvae", "latent=3", "model.hidden=[8]"]), resolve=True))
    with pytest.raises(ConfigError, match=r"^the model is conditional \(family=cvae\): give its labels, y = a tensor \(2,\)"):
        vae.encode(model, torch.rand(2, 1, 28, 28))
    assert torch.equal(model.model.labels(12, torch.device("cpu")), torch.arange(12) % 10)


CALLERS = ["system.py", "evaluation.py", "pictures.py", "sampling.py", "loading.py", "api.py", "metrics/suite.py", "metrics/sample_quality.py",
           "metrics/disentanglement.py", "metrics/features.py", "callbacks.py"]  # fmt: skip


@pytest.mark.parametrize("caller", CALLERS)
def test_no_caller_probes_a_family_or_imports_one(caller):
    """hasattr/getattr on a model, isinstance against a family or part class, or an import of vae.families.<a family>."""
    tree = ast.parse((ROOT / "src" / "vae" / caller).read_text())
    parts = ("Model", "Posterior", "Prior", "Normal", "Gaussians")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("hasattr", "getattr"):  # on a model, system or family (a datamodule's is not ours to judge)
                probed = ast.unparse(node.args[0])
                assert not re.search(r"\b(model|system|family|pl_module|self)\b", probed), f"{caller}:{node.lineno}"
            if node.func.id == "isinstance":
                assert not any(part in ast.unparse(node.args[1]) for part in parts), f"{caller}:{node.lineno}"
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vae.families."):
            assert caller != "evaluation.py" and node.module == "vae.families.base", f"{caller} imports {node.module}"


def test_the_system_is_named_for_what_it_is_and_the_old_name_still_loads():
    assert System.__name__ == "System" and VAE is System


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["objective=iwae", "beta=linear"], r"^beta=linear does not apply to objective=iwae: "),
        (["objective=capacity", "beta.value=2"], r"^beta=constant beta.value=2 does not apply to objective=capacity: "),
        (["family=hvae", "latent=8"], r"^latent=8 is unused by family=hvae, .* give family.latents=\[100, 8\] instead"),
    ],
)
def test_a_knob_that_cannot_apply_is_refused_in_one_line(tmp_path, overrides, message):
    with pytest.raises(Exception) as caught:  # a constructor's error arrives wrapped by Hydra's instantiate
        train(make_config(tmp_path, [*TINY, *overrides]))
    line = user_error_message(caught.value)
    assert line is not None and re.match(message, line), line


def test_latent_given_as_the_top_layer_or_left_alone_fits_hvae(tmp_path):
    from vae.families.hierarchy import UNSET_LATENT

    assert UNSET_LATENT == OmegaConf.load(ROOT / "conf" / "train.yaml").latent
    for extra in ([], ["latent=50"]):  # experiment=burda2016 family=hvae sets latent: 50
        cfg = make_config(tmp_path, ["family=hvae", *extra])
        check_new_run(cfg)
        assert System(OmegaConf.to_container(cfg, resolve=True)).model.layer_sizes == [100, 50]
    stored = make_config(tmp_path, ["family=hvae", "latent=8"])  # a checkpoint trained when latent= was ignored
    assert System(OmegaConf.to_container(stored, resolve=True)).model.layer_sizes == [100, 50]


def test_the_kl_schedule_weighs_beta_tcvae_and_capacity_is_its_own_objective(tmp_path):
    system = System(OmegaConf.to_container(make_config(tmp_path, ["objective=beta_tcvae", "beta=linear",
                                                                   "beta.warmup_steps=10", "model.hidden=[8]"]), resolve=True))  # fmt: skip
    system.objective.setup(100)
    torch.manual_seed(0)
    draw = system.model.draw(torch.rand(6, 1, 28, 28))
    start, half = system.objective(draw, step=0), system.objective(draw, step=5)
    torch.testing.assert_close(start["loss"], start["rec"])  # beta = 0 at step 0: the KL is not weighed yet
    assert half["beta"] == 0.5 and not torch.allclose(half["loss"], half["rec"])
    capacity = System(OmegaConf.to_container(make_config(tmp_path, ["objective=capacity"]), resolve=True)).objective
    assert capacity.capacity(0) == 0.0 and capacity.capacity(10_000) == 25.0


def test_describe_reads_the_stored_model_choice(tmp_path):
    from vae.checkpoints import describe

    assert "model=burda" in describe(make_config(tmp_path, ["model=burda", "latent=50"]))
    assert "family=hvae model=burda" in describe(make_config(tmp_path, ["family=hvae"]))
    old = make_config(tmp_path, [])
    with open_dict(old):
        del old.model["name"]  # a checkpoint from before the choice was stored
    assert "model=mlp" in describe(old)


def test_extending_names_the_files_one_touches():
    text = Path(ROOT / "docs" / "extending.md").read_text()
    for path in ("src/vae/families/base.py", "conf/family/", "src/vae/priors/", "conf/prior/", "src/vae/objectives/", "conf/objective/"):
        assert path in text


def test_a_checkpoint_trained_with_the_capacity_schedule_still_loads(tmp_path):
    """Before capacity was its own objective, `beta=capacity` stored objective=elbo with a Capacity schedule."""
    cfg = OmegaConf.to_container(make_config(tmp_path, ["model.hidden=[8]"]), resolve=True)
    cfg["objective"]["schedule"] = {"_target_": "vae.schedules.Capacity", "gamma": 2.0, "max_capacity": 5.0, "capacity_steps": 10}
    objective = System(cfg).objective
    assert objective.name == "capacity" and objective.gamma == 2.0 and objective.capacity(5) == 2.5

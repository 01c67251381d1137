"""A crafted checkpoint runs nothing: every `_target_` of a stored config is checked before anything is built.

Each payload is a real checkpoint of a tiny trained model whose stored config was edited and
whose digest was recomputed (as an attacker would), fed to every entry point that reads one.
"""

import pickle
import re
import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

import vae
from conftest import CONF, TINY, make_config, run_script
from vae.checkpoints import config_digest
from vae.errors import ConfigError
from vae.evaluation import evaluate_checkpoint
from vae.likelihoods.bernoulli import Bernoulli
from vae.sampling import draw_checkpoint
from vae.system import VAE
from vae.targets import package_targets, targets_in
from vae.training import train


class OwnBernoulli(Bernoulli):
    """A likelihood of the user's own, outside the package: allowed only where the user names it."""


class RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def payloads(victim: Path, created: Path, pickle_file: Path, marker: Path) -> dict[str, dict]:
    """Config edits (top-level key -> node) that would write, empty or run something if instantiated."""
    def path(file: Path) -> dict:
        return {"_target_": "pathlib.Path", "_args_": [str(file)]}

    return {
        "truncates a file": {"likelihood": {"_target_": "shutil.copyfile", "_args_": ["/dev/null", str(victim)]}},
        "creates a file": {"likelihood": {"_target_": "builtins.open", "_args_": [str(created), "w"]}},
        "writes any file": {"likelihood": {"_target_": "pathlib.Path.write_text", "_args_": [path(created), "import os"]}},
        "writes a pickle then loads it": {  # the data (built first) writes it, the likelihood loads it
            "data": {"root": {"_target_": "pathlib.Path.write_text", "_args_": [path(pickle_file), pickle.dumps(RunsCode(marker), 0).decode()]}},
            "likelihood": {"_target_": "torch.load", "_args_": [str(pickle_file)], "weights_only": False},
        },
        "another package's function": {"likelihood": {"_target_": "numpy.save", "_args_": [str(created), [1, 2]]}},
    }


def crafted(checkpoint: Path, edits: dict, out: Path) -> Path:
    """The checkpoint with its stored config edited (a node without a target edits the node) and its digest recomputed."""
    ckpt = torch.load(checkpoint, weights_only=True)
    config = ckpt["hyper_parameters"]["config"]
    for key, node in edits.items():
        config[key] = node if "_target_" in node else {**config[key], **node}
    ckpt["config_digest"] = config_digest(ckpt)
    torch.save(ckpt, out)
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    train(make_config(run, TINY))
    return run / "checkpoints" / "last.ckpt"


@pytest.fixture
def scene(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    names = {"victim": victim, "created": tmp_path / "created", "pickle_file": tmp_path / "p.pkl", "marker": tmp_path / "ran"}

    def untouched() -> bool:
        return victim.read_text() == "precious" and not any(names[k].exists() for k in ("created", "pickle_file", "marker"))

    return names, untouched


def eval_config(ckpt: Path, name: str = "eval", **extra):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(name, overrides=[f"ckpt_path={ckpt}", *[f"{k}={v}" for k, v in extra.items()]])


ENTRY_POINTS = {
    "vae.load": lambda ckpt, run: vae.load(ckpt),
    "VAE.load_from_checkpoint": lambda ckpt, run: VAE.load_from_checkpoint(ckpt),
    "eval": lambda ckpt, run: evaluate_checkpoint(eval_config(ckpt, nll_samples=1)),
    "sample": lambda ckpt, run: draw_checkpoint(eval_config(ckpt, "sample", out_dir=run / "pictures")),
    "ckpt_path=": lambda ckpt, run: train(make_config(run / "new", [*TINY, f"ckpt_path={ckpt}"])),
}


PAYLOADS = list(payloads(*[Path()] * 4))
FAST = [("vae.load", payload) for payload in PAYLOADS] + [(entry, PAYLOADS[3]) for entry in ENTRY_POINTS if entry != "vae.load"]
CASES = [  # each payload through vae.load and each entry point with the two-stage pickle in the fast tier, the rest slow
    pytest.param(entry, payload, marks=[] if (entry, payload) in FAST else [pytest.mark.slow])
    for entry in ENTRY_POINTS
    for payload in PAYLOADS
]


@pytest.mark.parametrize("entry,payload", CASES)
def test_a_crafted_checkpoint_is_refused_and_changes_nothing(trained, scene, tmp_path, payload, entry):
    names, untouched = scene
    edits = payloads(**names)[payload]
    ckpt = crafted(trained, edits, tmp_path / "crafted.ckpt")
    targets = "|".join(target for _, target in targets_in(edits))
    with pytest.raises(ConfigError, match=rf"refused: its stored config names _target_ ({targets}) .*nothing in it was run"):
        ENTRY_POINTS[entry](ckpt, tmp_path)
    assert untouched()


@pytest.mark.parametrize("entry", ["vae.load", "eval", "sample"])
def test_the_commands_and_the_api_refuse_non_finite_weights(trained, tmp_path, entry):
    """eval, sample and vae.load share one preamble: a model whose weights hold NaN is refused by each."""
    checkpoint = torch.load(trained, weights_only=True)
    name = next(iter(checkpoint["state_dict"]))
    checkpoint["state_dict"][name][0] = float("nan")
    torch.save(checkpoint, tmp_path / "nan.ckpt")
    with pytest.raises(ConfigError, match=rf"nan.ckpt holds non-finite weights \({re.escape(name)} has NaN or inf\)"):
        ENTRY_POINTS[entry](tmp_path / "nan.ckpt", tmp_path)
    assert not (tmp_path / "pictures").exists()


def test_the_allowlist_is_the_packages_own_configs():
    targets = package_targets()
    assert {"vae.families.vae.VAEModel", "vae.likelihoods.bernoulli.Bernoulli", "torch.optim.Adam"} <= targets
    assert not any(t.startswith(("builtins", "shutil", "pathlib", "os.", "subprocess", "torch.load")) for t in targets)


def test_a_users_own_target_needs_their_trust(tmp_path):
    own = f"{__name__}.OwnBernoulli"
    train(make_config(tmp_path, [*TINY, f"likelihood._target_={own}"]))  # their own command line: trusted
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError, match=rf"_target_ {own} .*add trust=\[{own}\]"):
        vae.load(ckpt)
    assert isinstance(vae.load(ckpt, trust=[own]).model.likelihood, OwnBernoulli)
    assert evaluate_checkpoint(eval_config(ckpt, nll_samples=1, trust=f"[{own}]"))["test/nll"] > 0


def refused(stderr: str, targets: list[str]) -> bool:
    return any(f"names _target_ {target} " in stderr for target in targets)


@pytest.mark.slow
def test_resume_and_the_commands_refuse_a_crafted_run_folder(tmp_path, scene):
    """Through the real commands: eval, sample, and resume= of a folder whose last.ckpt was crafted."""
    names, untouched = scene
    started = run_script("train.py", *TINY, "hydra.run.dir=run", cwd=tmp_path)
    assert started.returncode == 0, started.stderr[-2000:]
    run = tmp_path / "run"
    for payload in ("truncates a file", "writes a pickle then loads it"):
        edits = payloads(**names)[payload]
        targets = [target for _, target in targets_in(edits)]
        ckpt = crafted(run / "checkpoints" / "last.ckpt", edits, tmp_path / "crafted.ckpt")
        for script, args in (("eval.py", ["nll_samples=1"]), ("sample.py", [])):
            done = run_script(script, f"ckpt_path={ckpt}", *args, cwd=tmp_path)
            assert done.returncode == 2 and refused(done.stderr, targets), done.stderr[-2000:]
        copy = tmp_path / "copy"
        shutil.copytree(run, copy)
        shutil.copy(ckpt, copy / "checkpoints" / "last.ckpt")
        before = sorted(p.relative_to(copy) for p in copy.rglob("*"))
        done = run_script("train.py", f"resume={copy}", "trainer.max_epochs=2", cwd=tmp_path)
        assert done.returncode == 2 and refused(done.stderr, targets), done.stderr[-2000:]
        assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == before
        shutil.rmtree(copy)
        assert untouched()

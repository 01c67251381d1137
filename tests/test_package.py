"""The wheel: built from this checkout, installed into a fresh virtual environment, its commands run from elsewhere.

The environment borrows the installed dependencies (torch, Lightning, ...) through a .pth file, so
nothing is downloaded; `vae` itself comes from the wheel alone.
"""

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, TINY

pytestmark = pytest.mark.slow  # every test here builds the wheel and runs its commands


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """bin/ of a fresh virtual environment with the wheel of this checkout installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(ROOT), "-w", str(tmp)]
    subprocess.run(build, check=True, capture_output=True, cwd=ROOT)
    (wheel,) = tmp.glob("vae_zoo-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"vae/conf/{p.relative_to(ROOT / 'conf')}" for p in (ROOT / "conf").rglob("*.yaml")}
    shipped |= {f"vae/{p.relative_to(ROOT / 'src' / 'vae')}" for p in (ROOT / "src" / "vae").rglob("*.py")}
    assert shipped | {"vae/py.typed", "vae/conf/__init__.py"} <= names, sorted(shipped - names)
    assert {"LICENSE", "METADATA", "entry_points.txt"} <= {Path(name).name for name in names if ".dist-info/" in name}

    env = tmp / "venv"
    subprocess.run([sys.base_prefix + "/bin/python3", "-m", "venv", "--without-pip", str(env)], check=True)
    (site,) = (env / "lib").glob("python3*/site-packages")
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch & co., not `vae`
    install = [sys.executable, "-m", "pip", "--python", str(env / "bin" / "python"), "install", "--no-deps", "-q"]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True)
    return env / "bin"


def run(command: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run([str(command), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_wheel_imports_from_its_own_environment(venv, tmp_path):
    code = "import vae, vae.config_path as c; print(vae.__version__, vae.__file__, c.CONFIG_PATH)"
    version, path, config_path = run(venv / "python", "-c", code, cwd=tmp_path).stdout.split()
    assert Path(path).is_relative_to(venv.parent) and config_path == "pkg://vae.conf"
    assert version == run(venv / "python", "-c", "import importlib.metadata as m; print(m.version('vae-zoo'))",
                          cwd=tmp_path).stdout.strip()  # fmt: skip


def test_installed_commands_train_sample_and_evaluate_from_any_folder(venv, tmp_path):
    mine = tmp_path / "my_conf" / "model"  # a config of the user's own, joined to the search path
    mine.mkdir(parents=True)
    (mine / "tiny_mlp.yaml").write_text("defaults:\n  - mlp\nhidden: [17]\n")
    help_text = run(venv / "vae-train", "--help", cwd=tmp_path).stdout
    assert "experiment: " in help_text and "debug: default" in help_text and "optimizer: adam, adamw, sgd" in help_text

    searchpath = f"hydra.searchpath=[file://{tmp_path / 'my_conf'}]"
    result = run(venv / "vae-train", *TINY, searchpath, "model=tiny_mlp", "latent=3", "hydra.run.dir=run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert yaml.safe_load((tmp_path / "run" / ".hydra" / "config.yaml").read_text())["model"]["hidden"] == [17]
    checkpoint = tmp_path / "run" / "checkpoints" / "best.ckpt"

    result = run(venv / "vae-sample", f"ckpt_path={checkpoint}", "n=4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "samples" / "samples.png").is_file()
    result = run(venv / "vae-eval", f"ckpt_path={checkpoint}", "nll_samples=2", cwd=tmp_path)
    assert result.returncode == 0 and "test/nll" in result.stdout + result.stderr, result.stderr[-3000:]

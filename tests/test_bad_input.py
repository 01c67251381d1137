"""Every bad input a user can give `src/train.py`: one `error:` line that names it, exit 2, no traceback, no results."""

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import ROOT, TINY, write_idx_set, write_image_folder

pytestmark = pytest.mark.slow  # every test here runs src/train.py in subprocesses


def empty_folder(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def truncated_mnist(tmp: Path) -> Path:
    images = write_idx_set(tmp / "data", "MNIST") / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:5000])
    return tmp / "data"


def folder_without_images(tmp: Path) -> Path:
    (tmp / "pictures" / "cats").mkdir(parents=True)
    (tmp / "pictures" / "cats" / "notes.txt").write_text("no pictures here")
    return tmp / "pictures"


def folder_with_a_corrupt_image(tmp: Path) -> Path:
    write_image_folder(tmp / "pictures", n_per_class=5)
    (tmp / "pictures" / "digit3" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return tmp / "pictures"


def under_a_file(tmp: Path) -> Path:
    """A folder that cannot be made, even by root: its parent is a regular file."""
    (tmp / "a_file").write_text("")
    return tmp / "a_file" / "run"


def corrupt_checkpoint(tmp: Path) -> Path:
    (tmp / "broken.ckpt").write_bytes(b"PK\x03\x04 half a zip file")
    return tmp / "broken.ckpt"


def random_bytes(tmp: Path) -> Path:
    (tmp / "noise.ckpt").write_bytes(bytes(range(256)) * 40)
    return tmp / "noise.ckpt"


def saved_tensor(tmp: Path) -> Path:
    import torch

    torch.save(torch.ones(3), tmp / "tensor.ckpt")
    return tmp / "tensor.ckpt"


def folder_with_a_symlink_loop(tmp: Path) -> Path:
    write_image_folder(tmp / "pictures", n_per_class=3)
    (tmp / "pictures" / "digit3" / "again").symlink_to("..")  # ImageFolder would walk it until the path is too long
    return tmp / "pictures"


def a_full_disk(tmp: Path) -> Path:
    """A run folder whose checkpoint writes land on /dev/full, which answers every write with ENOSPC."""
    (tmp / "run" / "checkpoints").mkdir(parents=True)
    (tmp / "run" / "checkpoints" / "last.ckpt.tmp").symlink_to("/dev/full")
    (tmp / "run" / "checkpoints" / "best.ckpt.tmp").symlink_to("/dev/full")
    return tmp / "run"


def too_long_a_name(tmp: Path) -> Path:
    return tmp / ("x" * 300)  # one component past the file system's 255


CASES = {  # id: (overrides, with {path} made by the function, the error line it must print)
    "unknown model": (["model=transformer"], None, r"model=transformer is not an option: choose one of burda, conv, mlp, resnet"),
    "null group under a preset": (
        ["experiment=beyond_burda", "scheduler=null"],
        None,
        r"scheduler=null cannot drop a scheduler that a preset \(experiment=...\) chose: write ~scheduler to run .*",
    ),
    "zero latent": (["latent=0"], None, r"latent=0 is invalid: it must be an integer >= 1"),
    "text latent": (["latent=abc"], None, r"latent=abc is invalid: it must be an integer >= 1"),
    "negative warm-up": (["beta=linear", "beta.warmup_steps=-1"], None, r"beta.warmup_steps=-1 is invalid: .*>= 0"),
    "no MNIST files offline": (
        ["data=mnist", "data.download=false", "paths.data_dir={path}"],
        empty_folder,
        r"data=mnist: no usable MNIST files under {path}/MNIST .*paths.data_dir=<folder>.*data.download=true",
    ),
    "truncated MNIST file": (
        ["data=mnist", "data.download=false", "data.val_size=50", "paths.data_dir={path}"],
        truncated_mnist,
        r"data=mnist: no usable MNIST files under {path}/MNIST \(shape .* is invalid .*\); copy them there .*",
    ),
    "missing image folder": (
        ["data=folder", "data.path=/nonexistent"],
        None,
        r"data.path=/nonexistent is not a folder: give a folder laid out as <path>/<class>/<image>",
    ),
    "image folder, no images": (
        ["data=folder", "data.path={path}"],
        folder_without_images,
        r"data.path={path} holds no images \(Found no valid file .*\): lay it out as <path>/<class>/<image>",
    ),
    "corrupt image": (
        ["data=folder", "data.path={path}"],
        folder_with_a_corrupt_image,
        r"data.path={path} holds an unreadable image \(.*2.png.*\): remove or replace it",
    ),
    "unwritable output folder": (
        ["hydra.run.dir={path}"],
        under_a_file,
        r"{path} cannot be written \(Not a directory\): choose a folder you can write \(hydra.run.dir=...\)",
    ),
    "typo in a key": (["optimizer.lrr=0.1"], None, r"optimizer.lrr is not a config key: did you mean optimizer.lr\? .*"),
    "missing checkpoint": (["ckpt_path=nowhere.ckpt"], None, r"ckpt_path=nowhere.ckpt does not exist: .*"),
    "corrupt checkpoint": (
        ["ckpt_path={path}"],
        corrupt_checkpoint,
        r"ckpt_path={path} is not a readable checkpoint \(truncated or corrupt\?\).*",
    ),
    "resume a non-run": (["resume={path}"], empty_folder, r"resume={path} is not a run folder: .*"),
    # Lightning's Trainer refusing a setting, in its words, naming it
    "negative epochs": (["trainer.max_epochs=-5"], None, r"trainer.max_epochs=-5 is invalid: `max_epochs` must be .*"),
    "unknown precision": (
        ["trainer.precision=17"],
        None,
        r"trainer.precision=17 is invalid: Precision '?17'? is invalid. Allowed .*",
    ),
    "unknown accelerator": (
        ["trainer.accelerator=abacus"],
        None,
        r"trainer.accelerator=abacus is invalid: .*Available names are: .*cpu.*",
    ),
    "zero devices": (
        ["trainer.devices=0"],
        None,
        r"trainer.devices=0 is invalid: `Trainer\(devices=0\)` value is not a valid input.*",
    ),
    "text epochs": (
        ["trainer.max_epochs=many"],
        None,
        r"trainer.max_epochs=many is invalid: Lightning's Trainer takes Optional\[int\] there",
    ),
    "unknown trainer key": (
        ["+trainer.max_epoch=3"],
        None,
        r"trainer.max_epoch is not an argument of Lightning's Trainer: did you mean trainer.max_epochs.*",
    ),
    # the model, the optimiser, the seed, beta: what torch or numpy would refuse mid-run, refused up front
    "too large a model": (
        ["model.hidden=[100000000000]"],
        None,
        r"the model does not fit in memory \(.*allocate.*\): make it smaller than latent=20 model.hidden=\[100000000000\]",
    ),
    "shapes too large for memory": (
        ["data=shapes", "data.positions=100000"],
        None,
        r"data.positions=100000 is too large: data=shapes would render 1,200,000,000,000 images .*; lower data.positions .*",
    ),
    "no hvae layers": (
        ["family=hvae", "family.latents=[]"],
        None,
        r"family.latents=\[\] is invalid: give two or more layer sizes, bottom first, e.g. \[100, 50\]",
    ),
    "zero-width conv": (
        ["model=conv", "model.channels=[0,8]"],
        None,
        r"model.channels=0 is invalid: it must be an integer >= 1",
    ),
    "negative learning rate": (["optimizer.lr=-0.1"], None, r"optimizer.lr=-0.1 is invalid: it must be a finite number >= 0.0"),
    "text learning rate": (["optimizer.lr=fast"], None, r"optimizer.lr=fast is invalid: it must be a finite number >= 0.0"),
    "negative seed": (["seed=-1"], None, r"seed=-1 is invalid: it must be an integer from 0 to 4294967295"),
    "text seed": (["seed=lucky"], None, r"seed=lucky is invalid: it must be an integer from 0 to 4294967295"),
    "NaN beta": (["beta.value=nan"], None, r"beta.value=nan is invalid: it must be a finite number >= 0.0"),
    "infinite gamma": (
        ["objective=capacity", "objective.gamma=inf"],
        None,
        r"objective.gamma=inf is invalid: it must be a finite number >= 0.0",
    ),
    "capacity as a beta schedule (the old spelling)": (["beta=capacity"], None, r"beta=capacity is now objective=capacity, .*"),
    "a KL schedule for a bound without a KL term": (
        ["objective=iwae", "beta=linear"],
        None,
        r"beta=linear does not apply to objective=iwae: .*; leave beta= at its default \(constant 1\)",
    ),
    "latent= under a family that sizes its layers itself": (
        ["family=hvae", "latent=8"],
        None,
        r"latent=8 is unused by family=hvae, whose layer sizes are family.latents=\[100, 50\] .*: give family.latents=\[100, 8\] instead",
    ),
    "whole set as val": (
        ["data.val_size=1.0"],
        None,
        r"data.val_size=1.0 is invalid: give a count \(an integer >= 1\) or a fraction of the set in \(0, 1\)",
    ),
    # files
    "symlink loop in an image folder": (
        ["data=folder", "data.path={path}"],
        folder_with_a_symlink_loop,
        r"data.path={path} holds a symlink loop \({path}/digit3/again -> {path}, a folder above it\): remove the link",
    ),
    "random bytes as a checkpoint": (
        ["ckpt_path={path}"],
        random_bytes,
        r"ckpt_path={path} is not a readable checkpoint \(truncated or corrupt\?\): it is not a file written by torch.save",
    ),
    "a saved tensor as a checkpoint": (
        ["ckpt_path={path}"],
        saved_tensor,
        r"ckpt_path={path} is not a training checkpoint \(it holds Tensor, no state_dict\): .*",
    ),
    "disk full": (
        ["hydra.run.dir={path}"],
        a_full_disk,
        r"{path}/checkpoints/(last|best).ckpt could not be written \(No space left on device\): .*the files written before are kept",
    ),
    "run folder name too long": (
        ["hydra.run.dir={path}/run"],
        too_long_a_name,
        r"{path}/run cannot be written \(File name too long\): choose a folder you can write \(hydra.run.dir=...\)",
    ),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path | None, Path]]:
    """Every case's run of src/train.py, two at a time: each is a fresh process, mostly spent importing torch."""
    prepared = {}
    for case, (overrides, make, _) in CASES.items():
        tmp = tmp_path_factory.mktemp("case")
        path = make(tmp) if make else None
        prepared[case] = ([*TINY, *(override.format(path=path) for override in overrides)], path, tmp)

    def run(case: str) -> subprocess.CompletedProcess:
        args, _, tmp = prepared[case]
        command = [sys.executable, str(ROOT / "src" / "train.py"), *args]
        return subprocess.run(command, cwd=tmp, capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(CASES, pool.map(run, CASES)))
    return {case: (results[case], path, tmp) for case, (_, path, tmp) in prepared.items()}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_clear_line(case, outcomes):
    result, path, tmp = outcomes[case]

    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert "Error executing job" not in result.stderr  # Hydra's own report would be a second line
    assert re.fullmatch("error: " + CASES[case][2].format(path=re.escape(str(path))), errors[0]), errors[0]
    assert not list(tmp.rglob("results.json*"))


def test_a_run_that_trains_nothing_says_so(run_cli):
    result = run_cli(*TINY, "trainer.max_epochs=0")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no training step was taken (trainer.max_epochs=0" in result.stdout + result.stderr

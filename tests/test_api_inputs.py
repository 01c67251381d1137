"""The Python API checks its input like the commands: each bad argument is one line naming it and what
would be valid, and a conditional model (family=cvae) takes its labels in sample, encode, decode, reconstruct."""

import re

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import vae
from conftest import TINY, make_config
from vae.errors import ConfigError
from vae.system import VAE


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> VAE:
    """The default model (mlp, latent=20, 28x28 grey digits), untrained: the checks need no training."""
    cfg = make_config(tmp_path_factory.mktemp("plain"), TINY)
    return VAE(OmegaConf.to_container(cfg, resolve=True)).eval()


@pytest.fixture(scope="module")
def conditional(tmp_path_factory) -> VAE:
    """A tiny family=cvae trained a few steps and loaded back as a notebook would, on the CPU."""
    run = tmp_path_factory.mktemp("cvae")
    vae.train(make_config(run, [*TINY, "family=cvae", "model.hidden=[16]", "latent=3"]))
    return vae.load(run / "checkpoints" / "best.ckpt", device="cpu")


def refusal(call) -> str:
    with pytest.raises(ConfigError) as caught:  # a ValueError, so `except ValueError` catches it too
        call()
    assert isinstance(caught.value, ValueError) and "\n" not in str(caught.value)
    return str(caught.value)


X = torch.rand(2, 1, 28, 28)
BAD_CALLS = {
    "negative count": (lambda m: vae.sample(m, -1), r"n=-1 is invalid: it must be an integer >= 1"),
    "fractional count": (lambda m: vae.sample(m, 2.5), r"n=2.5 is invalid: it must be an integer >= 1"),
    "no samples": (lambda m: vae.sample(m, 0), r"n=0 is invalid: it must be an integer >= 1"),
    "negative seed": (lambda m: vae.sample(m, 2, seed=-1), r"seed=-1 is invalid: it must be None or an integer from 0 to .*"),
    "images without a batch": (
        lambda m: vae.encode(m, X[0]), r"x has shape \(1, 28, 28\): give images \(B, 1, 28, 28\)"
    ),
    "colour images for a grey model": (
        lambda m: vae.encode(m, X.expand(2, 3, 28, 28)), r"x has shape \(2, 3, 28, 28\): give images \(B, 1, 28, 28\)"
    ),
    "images of another size": (
        lambda m: vae.reconstruct(m, torch.rand(2, 1, 32, 32)), r"x has shape \(2, 1, 32, 32\): give images \(B, 1, 28, 28\)"
    ),
    "pixels in 0..255 as floats": (
        lambda m: vae.encode(m, X * 255),
        r"x holds values from [\d.e-]+ to [\d.]+: give images as floats in \[0, 1\] \(pixels in 0..255\? divide by 255 "
        r"or give torch.uint8\) or as torch.uint8",
    ),
    "negative pixels": (lambda m: vae.encode(m, X - 0.5), r"x holds values from -[\d.]+ to [\d.]+: give images as floats in \[0, 1\] or as torch.uint8"),
    "NaN pixels": (
        lambda m: vae.encode(m, X.clone().index_fill_(2, torch.tensor([3]), float("nan"))),
        r"x holds NaN or inf: give images as floats in \[0, 1\] or as torch.uint8 in 0..255",
    ),
    "infinite pixels": (lambda m: vae.reconstruct(m, X / 0), r"x holds NaN or inf: .*"),
    "int64 pixels": (
        lambda m: vae.encode(m, (X * 255).long()), r"x has dtype torch.int64: give images as floats in \[0, 1\] or as torch.uint8 in 0..255"
    ),
    "a numpy array": (lambda m: vae.encode(m, X.numpy()), r"x is a ndarray: give a torch.Tensor of images \(B, 1, 28, 28\)"),
    "codes of another size": (lambda m: vae.decode(m, torch.randn(2, 3)), r"z has shape \(2, 3\): give codes \(B, 20\)"),
    "one code without a batch": (lambda m: vae.decode(m, torch.randn(20)), r"z has shape \(20,\): give codes \(B, 20\)"),
    "NaN codes": (lambda m: vae.decode(m, torch.full((2, 20), float("nan"))), r"z holds NaN or inf: give finite codes \(B, 20\)"),
    "labels for an unconditional model": (
        lambda m: vae.encode(m, X, torch.tensor([1, 2])),
        r"y is given but the model takes no labels: only a conditional model \(family=cvae\) does; drop y",
    ),
}


def test_what_the_readme_allows_is_taken(plain):
    ends = torch.zeros(2, 1, 28, 28).index_fill_(3, torch.tensor([0]), 1.0)  # exactly 0 and 1
    assert vae.encode(plain, ends).shape == (2, 20)
    assert torch.allclose(vae.encode(plain, (ends * 255).to(torch.uint8)), vae.encode(plain, ends))
    assert vae.sample(plain, np.int64(3), seed=np.int64(1)).shape == (3, 1, 28, 28)  # numpy integers count
    assert vae.decode(plain, torch.zeros(2, 20, dtype=torch.float64)).shape == (2, 1, 28, 28)


CONDITIONAL_REFUSALS = {
    "encode without labels": (
        lambda m: vae.encode(m, X),
        r"the model is conditional \(family=cvae\): give its labels, y = a tensor \(2,\) of integers in 0..9",
    ),
    "reconstruct without labels": (lambda m: vae.reconstruct(m, X), r"the model is conditional \(family=cvae\): give its labels, .*"),
    "decode without labels": (lambda m: vae.decode(m, torch.zeros(2, 3)), r"the model is conditional \(family=cvae\): .*\(2,\).*"),
    "a label per pixel row": (
        lambda m: vae.encode(m, X, torch.zeros(2, 28, dtype=torch.long)),
        r"y has shape \(2, 28\): give one label per image, \(2,\) integers in 0..9",
    ),
    "fewer labels than images": (
        lambda m: vae.reconstruct(m, X, torch.tensor([3])), r"y has shape \(1,\): give one label per image, \(2,\) integers in 0..9"
    ),
    "float labels": (
        lambda m: vae.encode(m, X, torch.tensor([1.0, 2.0])), r"y has dtype torch.float32: give labels as integers in 0..9 .*"
    ),
    "a label past the classes": (
        lambda m: vae.encode(m, X, torch.tensor([3, 10])), r"y holds labels from 3 to 10: the model knows 0..9"
    ),
    "a negative label": (lambda m: vae.sample(m, 2, y=torch.tensor([-1, 0])), r"y holds labels from -1 to 0: the model knows 0..9"),
    "labels for another count": (
        lambda m: vae.sample(m, 3, y=torch.tensor([1, 2])), r"y has shape \(2,\): give one label per image, \(3,\) integers in 0..9"
    ),
}


REFUSALS = {**{case: ("plain", *c) for case, c in BAD_CALLS.items()}, **{case: ("conditional", *c) for case, c in CONDITIONAL_REFUSALS.items()}}


@pytest.mark.parametrize("case", REFUSALS)
def test_bad_input_to_the_api_is_one_line_naming_the_argument(request, case):
    """Counts, seeds, shapes, ranges and NaN on the plain model; labels on the conditional one."""
    model, call, expected = REFUSALS[case]
    message = refusal(lambda: call(request.getfixturevalue(model)))
    assert re.fullmatch(expected, message), message


def test_a_conditional_model_is_used_with_its_labels(conditional):
    y = torch.tensor([3, 7])
    z = vae.encode(conditional, X, y)
    assert z.shape == (2, 3) and not torch.allclose(z, vae.encode(conditional, X, (y + 1) % 10))  # the label counts
    x_hat = vae.reconstruct(conditional, X, y)
    assert torch.equal(x_hat, vae.decode(conditional, z, y)) and x_hat.shape == X.shape
    assert not torch.allclose(x_hat, vae.decode(conditional, z, (y + 1) % 10))


def test_sampling_a_conditional_model_draws_the_labels_asked_for_else_the_classes_in_turn(conditional):
    sevens = vae.sample(conditional, 4, y=torch.full((4,), 7), seed=0)
    assert sevens.shape == (4, 1, 28, 28)
    in_turn = vae.sample(conditional, 12, seed=0)
    assert torch.equal(in_turn, vae.sample(conditional, 12, y=torch.arange(12) % 10, seed=0))
    assert not torch.allclose(in_turn, vae.sample(conditional, 12, y=(torch.arange(12) + 1) % 10, seed=0))

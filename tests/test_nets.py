"""Encoder and decoder nets take their shapes from the data: 28x28 grey and 32x32 colour."""

import pytest
import torch

from vae.errors import ConfigError
from vae.nets.conv import ConvDecoder, ConvEncoder
from vae.nets.mlp import MLPDecoder, MLPEncoder
from vae.nets.resnet import ResNetDecoder, ResNetEncoder

NETS = [(MLPEncoder, MLPDecoder), (ConvEncoder, ConvDecoder), (ResNetEncoder, ResNetDecoder)]


@pytest.mark.parametrize("shape", [(1, 32, 32), (3, 32, 32)])
@pytest.mark.parametrize("encoder_class, decoder_class", NETS)
@pytest.mark.parametrize("params_per_pixel", [1, 2, 30])
def test_shapes_follow_the_data(shape, encoder_class, decoder_class, params_per_pixel):
    encoder = encoder_class(in_shape=shape)
    decoder = decoder_class(out_shape=shape, latent_dim=5, params_per_pixel=params_per_pixel)
    h = encoder(torch.rand(4, *shape))
    assert h.shape == (4, encoder.out_features)
    assert decoder(torch.randn(4, 5)).shape == (4, shape[0] * params_per_pixel, *shape[1:])


def test_mlp_default_is_pytorch_examples_and_burda_is_two_tanh_layers():
    encoder, decoder = MLPEncoder((1, 28, 28)), MLPDecoder((1, 28, 28), latent_dim=20)
    weights = lambda net: [tuple(m.weight.shape) for m in net.modules() if isinstance(m, torch.nn.Linear)]  # noqa: E731
    assert weights(encoder) == [(400, 784)] and weights(decoder) == [(400, 20), (784, 400)]
    encoder = MLPEncoder((1, 28, 28), hidden=[200, 100], activation="tanh")
    decoder = MLPDecoder((1, 28, 28), latent_dim=50, hidden=[200, 100], activation="tanh")
    assert weights(encoder) == [(200, 784), (100, 200)] and weights(decoder) == [(100, 50), (200, 100), (784, 200)]
    assert any(isinstance(m, torch.nn.Tanh) for m in encoder.modules())


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: ConvEncoder((1, 30, 30)), "30x30"),
        (lambda: ResNetEncoder((3, 28, 28)), "28x28"),
        (lambda: MLPEncoder((1, 28, 28), hidden=[]), r"model.hidden=\[\]"),
        (lambda: MLPEncoder((1, 28, 28), activation="sigmoidal"), "model.activation=sigmoidal"),
        (lambda: MLPDecoder((1, 28, 28), latent_dim=0), "latent=0"),
        (lambda: ConvEncoder((1, 28, 28), channels=[0, 4]), "model.channels=0"),
    ],
)
def test_bad_sizes_are_one_line_errors(build, message):
    with pytest.raises(ConfigError, match=message):
        build()

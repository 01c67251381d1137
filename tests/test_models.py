"""Encoders and decoders take their shapes from the data: 28x28 grey and 32x32 colour."""

import pytest
import torch

from vae.errors import ConfigError
from vae.models import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("encoder_class, decoder_class", [(MLPEncoder, MLPDecoder), (ConvEncoder, ConvDecoder)])
@pytest.mark.parametrize("params_per_pixel", [1, 2])
def test_shapes_follow_the_data(shape, encoder_class, decoder_class, params_per_pixel):
    encoder = encoder_class(in_shape=shape, latent_dim=5)
    decoder = decoder_class(out_shape=shape, latent_dim=5, params_per_pixel=params_per_pixel)
    mu, logvar = encoder(torch.rand(4, *shape))
    assert mu.shape == logvar.shape == (4, 5)
    assert decoder(mu).shape == (4, shape[0] * params_per_pixel, *shape[1:])


def test_mlp_defaults_are_pytorch_examples_sizes():
    encoder, decoder = MLPEncoder((1, 28, 28), latent_dim=20), MLPDecoder((1, 28, 28), latent_dim=20)
    assert [m.weight.shape for m in encoder.net if hasattr(m, "weight")] == [(400, 784), (40, 400)]
    assert [m.weight.shape for m in decoder.net if hasattr(m, "weight")] == [(400, 20), (784, 400)]


def test_conv_needs_sides_divisible_by_four():
    with pytest.raises(ConfigError, match="30x30"):
        ConvEncoder((1, 30, 30), latent_dim=2)


def test_latent_must_be_positive():
    with pytest.raises(ConfigError, match="latent=0"):
        MLPEncoder((1, 28, 28), latent_dim=0)

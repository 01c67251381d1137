"""Encoder and decoder nets (the `model=` group): plain `nn.Module`s that know nothing of training.

An encoder maps x (B, C, H, W) to features (B, out_features), which a posterior turns into codes;
a decoder maps z (N, latent_dim) to `params_per_pixel` maps per channel (N, C * k, H, W), which a
likelihood reads. Image shapes come from the data module, never from here.
"""

"""Variational autoencoder experiments on PyTorch Lightning and Hydra.

Commands: `vae-train`, `vae-eval`, `vae-sample` (or `python src/train.py` in a checkout).
"""

__version__ = "0.2.0"

"""Variational autoencoder experiments on PyTorch Lightning and Hydra; `src/train.py` is the entry point."""

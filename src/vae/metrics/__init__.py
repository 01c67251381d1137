"""Judging a model beyond its likelihood: disentanglement of its codes, quality of its samples."""

"""Hydra configs. Installed, this folder is the package vae.conf, which the commands find as pkg://vae.conf."""

"""Evaluate a checkpoint on its test split. `python src/eval.py ckpt_path=<run>/checkpoints/best.ckpt nll_samples=5000`

Prints the ELBO and its terms, log p(x) from `nll_samples` importance samples (Burda et al.
2016), bits/dim, active units and the KL of each latent dimension, and writes them to
results.json in the checkpoint's run folder. torch loads only once a checkpoint is read.
"""

import sys

import hydra
from omegaconf import DictConfig

from vae.errors import exits_on_user_error, run_cli


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
@exits_on_user_error
def main(cfg: DictConfig) -> float:
    from vae.evaluation import evaluate_checkpoint

    return evaluate_checkpoint(cfg)["test/nll"]


if __name__ == "__main__":
    sys.exit(run_cli(main))

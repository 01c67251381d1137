"""Evaluate a checkpoint on its test split. `python src/eval.py ckpt_path=<run>/checkpoints/best.ckpt nll_samples=5000`

Prints the ELBO and its terms, log p(x) from `nll_samples` importance samples (Burda et al.
2016), bits/dim, active units and the KL of each latent dimension, and writes them to
results.json in the checkpoint's run folder. Installed: `vae-eval` (vae.cli).
"""

import sys

from vae.cli import evaluate

if __name__ == "__main__":
    sys.exit(evaluate())

"""Draw pictures from a checkpoint. `python src/sample.py ckpt_path=<run>/checkpoints/best.ckpt n=64`

Writes PNGs of prior samples (n of them, from a fixed seed), reconstructions, latent traversals,
interpolations and, for a 2-D latent space, the manifold and a scatter of test codes, into
<run folder>/samples/ (or out_dir=...). torch loads only once a checkpoint is read.
"""

import sys

import hydra
from omegaconf import DictConfig

from vae.errors import exits_on_user_error, run_cli


@hydra.main(version_base="1.3", config_path="../conf", config_name="sample")
@exits_on_user_error
def main(cfg: DictConfig) -> None:
    from vae.pictures import draw_checkpoint

    draw_checkpoint(cfg)


if __name__ == "__main__":
    sys.exit(run_cli(main))

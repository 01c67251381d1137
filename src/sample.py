"""Draw pictures from a checkpoint. `python src/sample.py ckpt_path=<run>/checkpoints/best.ckpt n=64`

Writes PNGs of prior samples (n of them, from a fixed seed), reconstructions, latent traversals,
interpolations and, for a 2-D latent space, the manifold and a scatter of test codes, into
<run folder>/samples/ (or out_dir=...). Installed: `vae-sample` (vae.cli).
"""

import sys

from vae.cli import sample

if __name__ == "__main__":
    sys.exit(sample())

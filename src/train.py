"""Train a VAE. `python src/train.py model=conv latent=16`; `--help` lists the config groups.

`python src/train.py resume=outputs/DATE/TIME` continues a stopped run from its last checkpoint.
The same command, installed: `vae-train` (vae.cli).
"""

import sys

from vae.cli import train

if __name__ == "__main__":
    sys.exit(train())

"""Train a VAE. `python src/train.py model=conv latent=16`; `--help` lists the config groups.

`python src/train.py resume=outputs/DATE/TIME` continues a stopped run from its last checkpoint.

Only Hydra is imported up front: torch and Lightning load when a run needs them, so
`--help` and `--cfg job` answer at once.
"""

import sys

import hydra
from omegaconf import DictConfig

from vae.errors import exits_on_user_error, run_cli


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
@exits_on_user_error
def main(cfg: DictConfig) -> float:
    from vae.training import train

    results = train(cfg)
    return -results.get("val/elbo", float("nan"))  # validation NLL bound (-ELBO): what sweepers minimise


def main_or_resume() -> None:
    """`resume=<run folder>` continues that run in its folder, with the overrides it was started with."""
    if any(arg.startswith("resume=") for arg in sys.argv[1:]):
        from vae.resume import resume_argv

        sys.argv[1:] = resume_argv(sys.argv[1:])
    main()


if __name__ == "__main__":
    sys.exit(run_cli(main_or_resume))

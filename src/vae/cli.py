"""The commands: `vae-train`, `vae-eval`, `vae-sample` (console scripts), also behind `src/*.py` in a checkout.

`vae-train model=conv latent=16` works from any folder: the configs ship inside the package as
`vae.conf` (Hydra's `pkg://vae.conf`); in a checkout they are read from its `conf/`, so an edit
there counts at once. A folder of your own configs joins the search path from the command line:
`vae-train hydra.searchpath=[file:///path/to/my/conf] model=mine` (its `model/mine.yaml`).

Only Hydra is imported up front: torch and Lightning load when a run needs them, so
`--help` and `--cfg job` answer at once.
"""

import os
import sys

import hydra
from omegaconf import DictConfig

from vae.config_path import CONFIG_PATH
from vae.errors import RunStopped, SweepFailed, UserExit, exits_on_user_error, user_error_message
from vae.sweep import sweep_member

EXIT_USER_ERROR = 2
EXIT_SWEEP_FAILED = 1  # a -m sweep ran, and one or more of its runs failed (each run's error.txt says why)
EXIT_STOPPED = 143  # 128 + SIGTERM: what a shell reports for a terminated job, so `&&` chains and schedulers see it


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
@sweep_member
@exits_on_user_error
def train_main(cfg: DictConfig) -> float:
    from vae.training import train as fit_and_test

    results = fit_and_test(cfg)
    return -results.get("val/elbo", float("nan"))  # validation NLL bound (-ELBO): what sweepers minimise


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="eval")
@exits_on_user_error
def eval_main(cfg: DictConfig) -> float:
    from vae.evaluation import evaluate_checkpoint

    return evaluate_checkpoint(cfg).get("test/nll", float("nan"))  # nll_samples=0: none


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="sample")
@exits_on_user_error
def sample_main(cfg: DictConfig) -> None:
    from vae.sampling import draw_checkpoint

    draw_checkpoint(cfg)


def run_cli(main) -> int:
    """Run a `@hydra.main` function; a user error exits 2 with one line on stderr, a bug keeps its traceback.

    A -m sweep in which some runs failed exits 1 with one line naming them, once the others have run.

    A run stopped by SIGTERM exits 143 with one line on stderr that says how to resume it.
    """
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # let errors reach us instead of Hydra's multi-line report
    try:
        main()
    except RunStopped as stop:
        print(stop, file=sys.stderr)
        return EXIT_STOPPED
    except UserExit as exc:  # from inside a job
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except SweepFailed as exc:  # after the sweep's other runs
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SWEEP_FAILED
    except Exception as exc:  # Hydra's composition errors, before any job starts
        message = user_error_message(exc, before_job=True)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


def train_or_resume() -> None:
    """`resume=<run folder>` continues that run in its folder, with the overrides it was started with.

    A SLURM job that was requeued continues in its own folder from its last checkpoint (vae.slurm).
    """
    from vae.slurm import requeue_argv

    sys.argv[1:] = requeue_argv(sys.argv[1:], os.environ)
    if any(arg.startswith("resume=") for arg in sys.argv[1:]):
        from vae.resume import resume_argv

        sys.argv[1:] = resume_argv(sys.argv[1:])
    train_main()


def train() -> int:
    """`vae-train`: fit, test and evaluate a VAE (`vae-train --help` lists the groups)."""
    return run_cli(train_or_resume)


def evaluate() -> int:
    """`vae-eval ckpt_path=<run>/checkpoints/best.ckpt`: test metrics of a checkpoint, log p(x) included."""
    return run_cli(eval_main)


def sample() -> int:
    """`vae-sample ckpt_path=<run>/checkpoints/best.ckpt n=64`: pictures of a checkpoint."""
    return run_cli(sample_main)

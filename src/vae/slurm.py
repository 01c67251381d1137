"""SLURM requeue: a job that SLURM starts again continues in its own run folder from its last checkpoint.

In a SLURM batch job (SLURM_JOB_ID set and a job name other than `bash` or `interactive`, as
Lightning tells one apart) a run's folder is `outputs/slurm/<job id>` (`<array job id>_<task id>`
for an array task) unless `hydra.run.dir=` is given: one folder for every task of the job and
every start of it. When SLURM starts the job again (SLURM_RESTART_COUNT >= 1: pre-emption, a
failed node, `scontrol requeue`, or Lightning's own requeue on `#SBATCH --signal=SIGUSR1@90`),
the same command line continues that folder's run as `resume=<folder>` would, from the newest of
`checkpoints/last.ckpt` and the `hpc_ckpt_N.ckpt` Lightning saves before it requeues. A requeue
before the first checkpoint starts again in an empty folder; what the attempt wrote moves to
`<folder>.attempt<N>`.

Only the standard library here: this runs before every start, `--help` included.
"""

from collections.abc import Mapping
from pathlib import Path

from vae.errors import ConfigError

INTERACTIVE = ("bash", "interactive")  # job names Lightning takes for an interactive allocation


def job_id(env: Mapping[str, str]) -> str | None:
    """The batch job's id as SLURM's own tools print it, or None outside one."""
    if "SLURM_JOB_ID" not in env or env.get("SLURM_JOB_NAME") in INTERACTIVE:
        return None
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env["SLURM_JOB_ID"]


def newest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint written last in a run folder: `checkpoints/last.ckpt` or one of Lightning's `hpc_ckpt_N.ckpt`."""
    candidates = [run_dir / "checkpoints" / "last.ckpt", *run_dir.glob("hpc_ckpt_*.ckpt")]
    found = [path for path in candidates if path.is_file()]
    return max(found, key=lambda path: path.stat().st_mtime_ns, default=None)


def requeue_argv(argv: list[str], env: Mapping[str, str]) -> list[str]:
    """The command line of a run in a SLURM job: its folder named by the job, and `resume=` after a requeue."""
    job = job_id(env)
    if job is None or "-m" in argv or "--multirun" in argv or any(key(arg) == "resume" for arg in argv):
        return argv  # a sweep's jobs are the launcher's; an explicit resume= is the user's
    given = next((arg.split("=", 1)[1] for arg in argv if key(arg) == "hydra.run.dir"), None)
    run_dir = Path(given) if given else Path("outputs") / "slurm" / job
    checkpoint = newest_checkpoint(run_dir)
    restarts = int(env.get("SLURM_RESTART_COUNT") or 0)
    if checkpoint is None:  # the first start, or a requeue before the first checkpoint: start in the folder
        if restarts and (run_dir / ".hydra").is_dir() and env.get("SLURM_PROCID", "0") == "0":
            set_aside(run_dir, restarts)
        return argv if given else [*argv, f"hydra.run.dir={run_dir}"]
    if restarts == 0:
        if given:
            return argv  # the user's own folder, as outside SLURM
        raise ConfigError(
            f"{run_dir} already holds a run of SLURM job {job}, which was not requeued: "
            "give each run of one job its own folder (hydra.run.dir=...)"
        )
    # resume= is read by vae.resume, not Hydra: the folder goes in as it is
    resumed = [arg for arg in argv if key(arg) != "hydra.run.dir"] + [f"resume={run_dir}"]
    if checkpoint.name != "last.ckpt":  # Lightning's requeue checkpoint is newer
        resumed.append(f"ckpt_path={quote(checkpoint)}")
    return resumed


def set_aside(run_dir: Path, restarts: int) -> Path:
    """Move what an attempt wrote before its first checkpoint (its log, its metrics) to `<folder>.attempt<N>`,
    so the new start begins an empty folder instead of being refused as a second run or appending to the CSV."""
    aside = run_dir.with_name(f"{run_dir.name}.attempt{restarts}")
    run_dir.rename(aside)
    return aside


def key(override: str) -> str:
    """`++hydra.run.dir=x` -> `hydra.run.dir`."""
    return override.split("=", 1)[0].lstrip("+~")


def quote(path: Path) -> str:
    """A path as one value of Hydra's override grammar."""
    return "'" + str(path).replace("'", "\\'") + "'"

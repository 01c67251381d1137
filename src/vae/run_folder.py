"""One run per run folder: a lock while a run writes there, a record that a run has started there.

Hydra makes the run folder but writes nothing into it (`hydra.output_subdir: null` in
train.yaml); `train()` holds the folder with `hold()` (an flock on the folder itself, so
a second run at the same time is refused and a killed run frees it at once), checks
everything it can, and only then writes `.hydra/` with `record()`. So a run that fails its
checks, a resume among them, leaves the folder as it was, and a second run into a folder
that holds one is refused instead of overwriting its checkpoints and mixing its metrics.
"""

import contextlib
import fcntl
import os
import socket
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

from vae.errors import ConfigError
from vae.files import atomic_write

RECORD = ".hydra"
STARTED = "started.yaml"  # the marker: when, where and by which process the run started


def is_launching_process() -> bool:
    """True in the process a user started; False in the extra processes of a DDP run (they share its folder)."""
    from lightning.pytorch.utilities import rank_zero_only

    other = any(os.environ.get(name, "0") != "0" for name in ("NODE_RANK", "GROUP_RANK"))
    return rank_zero_only.rank == 0 and not other


@contextlib.contextmanager
def hold(run_dir: Path, resume: bool):
    """Hold `run_dir` for this run; refuse if another run holds it now, or (not resuming) ever started in it."""
    if not is_launching_process():
        yield
        return
    folder = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when this process ends, however it ends
        except BlockingIOError:
            raise ConfigError(
                f"{run_dir} is in use by another run right now: wait for it to end, or give this run its own "
                "folder (hydra.run.dir=...)"
            ) from None
        started = run_dir / RECORD / STARTED
        if started.is_file() and not resume:
            when = (OmegaConf.load(started).get("time") or "earlier") if started.stat().st_size else "earlier"
            go_on = f"continue it with resume={run_dir}, or " if (run_dir / "checkpoints" / "last.ckpt").is_file() else ""
            raise ConfigError(
                f"{run_dir} already holds a run (started {when}): {go_on}give a new run its own folder (hydra.run.dir=...)"
            )
        yield
    finally:
        os.close(folder)


@contextlib.contextmanager
def restored_unless_it_trains(run_dir: Path, resume: bool, trained):
    """A resume that fails before it trains leaves the folder's own files as they were, whatever fails and
    however late (Lightning's checks, the data, a SIGTERM): the files of the folder and of `.hydra/` (the record,
    metrics.csv, the loggers' hparams.yaml) are put back byte for byte, and those it added are removed.

    trained: () -> bool, whether the run has taken a step of its own (from then on its files are its own).
    """
    if not (resume and is_launching_process()):
        yield
        return
    def files() -> list[Path]:
        return [path for folder in (run_dir, run_dir / RECORD) if folder.is_dir() for path in folder.iterdir() if path.is_file()]

    before = {path: path.read_bytes() for path in files()}
    try:
        yield
    except BaseException:
        if not trained():
            for path in files():
                if path not in before:
                    path.unlink()
            for path, data in before.items():
                with atomic_write(path, "wb") as file:
                    file.write(data)
        raise


def record(run_dir: Path, config_yaml: str) -> None:
    """Write `.hydra/` (the composed config, Hydra's config, the overrides) and the marker that a run started.

    The overrides are what `resume=<run folder>` replays: after a resume that passed its checks they
    hold the overrides it ran with (`trainer.max_epochs=100` included).
    """
    if not is_launching_process():
        return
    from hydra.core.hydra_config import HydraConfig

    folder = run_dir / RECORD
    folder.mkdir(exist_ok=True)
    files = {"config.yaml": config_yaml}
    if HydraConfig.initialized():  # train(cfg) called by a test has no Hydra run
        hydra = HydraConfig.get()
        files["hydra.yaml"] = OmegaConf.to_yaml(OmegaConf.create({"hydra": hydra}))
        files["overrides.yaml"] = OmegaConf.to_yaml(hydra.overrides.task)
    if not (folder / STARTED).is_file():
        now = datetime.now().isoformat(timespec="seconds")
        files[STARTED] = OmegaConf.to_yaml({"time": now, "host": socket.gethostname(), "pid": os.getpid()})
    for name, text in files.items():
        with atomic_write(folder / name) as file:
            file.write(text)


"""What a resumed run needs beyond Lightning's own state: `RunState`, the callback that carries it.

It adds what Lightning leaves out (the RNG streams, also when nothing is left to train, so the test
phase draws what the uninterrupted run drew), points the checkpoint callbacks at this folder when
the run folder was moved or copied, saves a checkpoint when SIGTERM asks the run to stop (letting a
validation under way or about to start run whole first), keeps `metrics.csv` to the rows before the
checkpoint so the resumed run appends, and stores the W&B run id a resume logs on into.
"""

import random
import signal
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from vae.compat import AppendingCSVLogger, hold_back_sigterm, release_sigterm, validates_after_this_batch
from vae.sigterm import in_main_thread


def rng_state() -> dict:
    """Every global random stream, as tensors and plain data (so `weights_only` loading accepts it)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])


class RunState(L.Callback):
    """What a resumed run needs beyond Lightning's own state, and a checkpoint when SIGTERM arrives."""

    def __init__(self):
        self.rng_to_restore: dict | None = None
        self.saved_at_step = -1
        self.fitting = False
        self.sigterm_held = False  # arrived before a validation, hidden from Lightning until it ends
        self.lightnings_handler = None  # while a validation runs, SIGTERM is only noted
        self.sigterm_noted = False

    def state_dict(self) -> dict:
        return {"rng": rng_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        if self.fitting:  # the streams of the checkpoint a fit continues from, not of best.ckpt loaded to test
            self.rng_to_restore = state_dict["rng"]

    def on_train_start(self, trainer, pl_module):
        # after the sanity check and data setup, which draw from the same streams
        self.restore_rng()

    def on_fit_end(self, trainer, pl_module):
        # a resume with nothing left to train (killed in the test phase, or finished): the test phase
        # then draws from the streams as they were when training ended, as the uninterrupted run did
        self.restore_rng()

    def restore_rng(self) -> None:
        if self.rng_to_restore is not None:
            set_rng_state(self.rng_to_restore)
            self.rng_to_restore = None

    def on_load_checkpoint(self, trainer, pl_module, checkpoint):
        # Lightning calls every callback's on_load_checkpoint before any load_state_dict
        self.fitting = trainer.state.fn == "fit"
        follow_the_run_folder(trainer, checkpoint)
        if self.fitting:
            for logger in trainer.loggers:
                if isinstance(logger, AppendingCSVLogger):
                    logger.drop_rows_from(checkpoint["global_step"])

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        for logger in trainer.loggers:
            logger.save()  # rows logged so far reach the disk, so the CSV keeps pace with the checkpoints
            if isinstance(logger, WandbLogger) and logger.version:
                checkpoint["wandb_run_id"] = logger.version

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        # where ModelCheckpoint saves too; Lightning stops the run right after this batch. With
        # several processes the signal reaches each at a different batch: they save in on_exception.
        if trainer.received_sigterm and trainer.world_size == 1:
            if validates_after_this_batch(trainer):  # a checkpoint from before it would skip it on resume
                self.hold_sigterm(trainer)
            else:
                self.save_last(trainer)

    def hold_sigterm(self, trainer: L.Trainer) -> None:
        """Let the validation about to start run whole; the run stops right after it."""
        hold_back_sigterm(trainer)
        self.sigterm_held = True

    def on_validation_start(self, trainer, pl_module):
        # Lightning would stop halfway through, and a resume cannot finish a validation half done: while
        # it runs, a SIGTERM is only noted, and handed to Lightning's handler once it has ended
        if trainer.state.fn == "fit" and not trainer.sanity_checking and trainer.world_size == 1 and in_main_thread():
            self.lightnings_handler = signal.signal(signal.SIGTERM, self.note_sigterm)

    def note_sigterm(self, signum, frame) -> None:
        self.sigterm_noted = True

    def on_validation_end(self, trainer, pl_module):
        if self.lightnings_handler is not None:
            signal.signal(signal.SIGTERM, self.lightnings_handler)
            if self.sigterm_noted and callable(self.lightnings_handler):
                self.lightnings_handler(signal.SIGTERM, None)
            self.lightnings_handler, self.sigterm_noted = None, False
        if self.sigterm_held:  # Lightning stops at its next check, after the validation; on_exception saves there
            release_sigterm(trainer)
            self.sigterm_held = False

    def on_exception(self, trainer, pl_module, exception):
        # every rank raises SIGTERMException at the same point, so all of them take part in the save
        if isinstance(exception, SIGTERMException) and trainer.state.fn == "fit" and trainer.global_step > 0:
            self.save_last(trainer)

    def save_last(self, trainer: L.Trainer) -> None:
        if self.saved_at_step == trainer.global_step:
            return
        saver = trainer.checkpoint_callback
        folder = Path(saver.dirpath) if saver and saver.dirpath else Path(trainer.default_root_dir) / "checkpoints"
        last = f"{ModelCheckpoint.CHECKPOINT_NAME_LAST}{ModelCheckpoint.FILE_EXTENSION}"
        trainer.save_checkpoint(folder / last, weights_only=False)
        self.saved_at_step = trainer.global_step


def follow_the_run_folder(trainer: L.Trainer, checkpoint: dict) -> None:
    """Point the checkpoint callbacks' saved state at this run's folder.

    Lightning's ModelCheckpoint keeps absolute paths (best.ckpt among them). A checkpoint of this
    run folder, moved or copied since, has its paths moved with it, so the resumed run tests its
    own best.ckpt; one of another run (`ckpt_path=`) gives up its best-so-far, so this run
    chooses its best among its own checkpoints.
    """
    loaded_from = Path(trainer.ckpt_path).resolve().parent if trainer.ckpt_path else None
    states = checkpoint.get("callbacks") or {}
    for callback in trainer.checkpoint_callbacks:
        state = states.get(callback.state_key)
        if not state or not callback.dirpath or state.get("dirpath") in (None, callback.dirpath):
            continue
        if loaded_from != Path(callback.dirpath).resolve():
            del states[callback.state_key]
            continue
        old, new = str(state["dirpath"]), str(callback.dirpath)

        def moved(path: str) -> str:
            return new + path[len(old) :] if path and path.startswith(old) else path

        for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
            if key in state:
                state[key] = moved(state[key])
        if "best_k_models" in state:
            state["best_k_models"] = {moved(path): score for path, score in state["best_k_models"].items()}
        state["dirpath"] = new

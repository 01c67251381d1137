"""Files written whole or not at all: a crash or a kill leaves the old file or the new one, never half of one."""

import contextlib
import json
import os
from pathlib import Path

from vae.errors import DISK_FULL, CannotWrite, causes


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", **open_kwargs):
    """Write to `<path>.tmp`, flush it to disk, then rename it over `path`; on an error, no file is left.

    A full disk (which torch reports as its own RuntimeError, the OSError behind it) is a CannotWrite
    that names the file: one line for the user, and the previous file is kept.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, mode, **open_kwargs) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        full = next((e for e in causes(exc) if isinstance(e, OSError) and e.errno in DISK_FULL), None)
        if full is not None:
            raise CannotWrite(
                f"{path} could not be written ({full.strerror}): free some space on that disk or choose another "
                "folder; the files written before are kept"
            ) from None
        raise
    folder = os.open(path.parent, os.O_RDONLY)  # make the rename itself durable
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def write_json(path: str | Path, data: dict) -> None:
    with atomic_write(path) as file:
        file.write(json.dumps(data, indent=2) + "\n")

"""Files written whole or not at all: a crash or a kill leaves the old file or the new one, never half of one."""

import contextlib
import json
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", **open_kwargs):
    """Write to `<path>.tmp`, flush it to disk, then rename it over `path`; on an error, no file is left."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, mode, **open_kwargs) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)  # make the rename itself durable
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def write_json(path: str | Path, data: dict) -> None:
    with atomic_write(path) as file:
        file.write(json.dumps(data, indent=2) + "\n")

"""Read a W&B offline run back from its files, without the wandb SDK's own reader.

A run's `run-<id>.wandb` file is a LevelDB-style log (wandb's `datastore` format): a 7-byte
header (":W&B", magic 0xBEE1, version), then 32 KiB blocks of records, each with a 7-byte
header (CRC, length, type: 1 full, 2 first, 3 middle, 4 last), holding `Record` protobufs.
"""

import json
import struct
from pathlib import Path

BLOCK, HEADER = 32768, 7


def read_records(path: Path) -> list:
    from wandb.proto.wandb_internal_pb2 import Record

    data = path.read_bytes()
    assert data[:4] == b":W&B" and struct.unpack("<H", data[4:6])[0] == 0xBEE1, f"{path} is not a W&B run file"
    records, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0:  # zero padding up to the end of the block
            pos += left
            continue
        pending += data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def flatten(items) -> dict:
    """History or summary items as {key: value}; nested keys joined by "/" ("images/samples/_type")."""
    return {"/".join(item.nested_key) or item.key: json.loads(item.value_json) for item in items}


def read_run(run_dir: Path) -> dict:
    """An offline run folder as {"run": the run record, "config", "history" (list of dicts), "summary", "artifacts"}."""
    (path,) = run_dir.glob("run-*.wandb")
    out = {"run": None, "config": {}, "history": [], "summary": {}, "artifacts": []}
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["run"] = record.run
        elif kind == "config":
            out["config"] |= {item.key: json.loads(item.value_json) for item in record.config.update}
        elif kind == "history":
            out["history"].append(flatten(record.history.item))
        elif kind == "summary":
            out["summary"] |= flatten(record.summary.update)
        elif kind == "artifact":
            out["artifacts"].append(record.artifact)
    return out

"""The records of a W&B offline run file (`run-*.wandb`), parsed with W&B's own protobuf schema.

The file is W&B's header (":W&B", a magic and a version: 7 bytes) then LevelDB's log format: 32 KiB blocks of
chunks, each a 7-byte header (CRC, little-endian length, type: 1 full, 2 first, 3 middle, 4 last) and data.
wandb 0.31 ships no Python reader for it any more, so the tests read it here.
"""

import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK, HEADER = 32768, 7


def records(path: Path) -> list[wandb_internal_pb2.Record]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    found, pending, offset = [], b"", HEADER
    while offset + HEADER <= len(data):
        room = BLOCK - offset % BLOCK
        if room < HEADER:  # a block's tail too short for a header is padding
            offset += room
            continue
        _, length, kind = struct.unpack("<IHB", data[offset : offset + HEADER])
        if length == 0 and kind == 0:
            break
        chunk = data[offset + HEADER : offset + HEADER + length]
        offset += HEADER + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            found.append(record)
    return found

"""Checkpoints that appear under their final name only when complete and on disk, and that are read as plain
data only (`load_plain`: `torch.load(weights_only=True)`, so no file can run code as it is read, resumed included).

Lightning's own `_atomic_save` writes through an fsspec transaction: the bytes go to a temporary file in the
system temp folder, then `shutil.move` puts them in place. Two gaps remain for local disks: without fsync, a
power loss or node crash can leave a renamed but empty file, and where /tmp is another file system (tmpfs,
node-local scratch against a shared home), the move is a copy, so a kill mid-copy leaves a truncated
`last.ckpt`. Here the temporary file lives in the checkpoint's own folder, is fsynced, and replaces the old
file with one atomic rename, which is fsynced in its folder too.
"""

import io
import os
import pickle
import re
import secrets
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from vrnn_lightning.errors import ConfigError

CONVERTER = "python -m vrnn_lightning.convert_checkpoint"


def load_plain(path: str | Path, map_location: Any = "cpu") -> Any:
    """`torch.load` of tensors and plain data only; a pickled object of any other type is refused unread, in
    one ConfigError naming it and the converter (for files one made oneself and trusts)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if not found:  # not an object refused by name: bytes that are no pickle (a damaged or foreign file)
            raise
        what = f"a pickled {found.group(1)}"
        raise ConfigError(
            f"ckpt_path={str(path)!r} holds {what}, which a checkpoint must not (unpickling it could run code), "
            f"so it was not read; if you made the file yourself and trust it: {CONVERTER} {path} <new.ckpt>"
        ) from None


def atomic_write(data: bytes, path: Path) -> None:
    """Write `data` to `path` so that a reader sees either the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its files are 0600, which would hide checkpoints from the rest of a group on a shared
    # cluster; created like this, the file gets what the umask gives any new file.
    temp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself reaches the disk
    finally:
        os.close(folder)


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO whose local saves go through `atomic_write` (remote URLs keep Lightning's path), and
    whose loads read plain data only."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write(buffer.getvalue(), Path(path))

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        """Every checkpoint Lightning reads (resume, `trainer.test(ckpt_path=...)`) with `weights_only=True`,
        whatever the caller asks: a resumed file must not run code either."""
        if "://" in str(path):
            return super().load_checkpoint(path, map_location, weights_only=True)
        if not Path(path).is_file():
            raise FileNotFoundError(f"Checkpoint file not found: {path}")
        return load_plain(path, map_location)

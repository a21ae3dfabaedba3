"""Convert a checkpoint you trust into plain data: python -m vrnn_lightning.convert_checkpoint OLD.ckpt NEW.ckpt

The project reads checkpoints with `weights_only=True` (tensors, numbers, strings, plain containers), so a file
that pickles any other object (an older program's `AttributeDict`, an OmegaConf config, numpy arrays, paths) is
refused. This command unpickles such a file fully, which can run code: use it only on a file you made yourself
or otherwise trust. It turns mappings into dicts, numpy arrays into tensors, numpy scalars into numbers and
paths into strings, refuses anything else by its key, checks the classes the file names as every load does, and
writes NEW atomically (never over OLD or an existing file).
"""

import argparse
import io
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch

from vrnn_lightning.errors import ConfigError, exit_with
from vrnn_lightning.training.checkpoint_io import atomic_write
from vrnn_lightning.training.checkpoints import check_named_classes

PLAIN = (torch.Tensor, torch.Size, int, float, bool, str, bytes, type(None))


def plain(value: Any, key: str = "checkpoint") -> Any:
    """`value` as tensors, numbers, strings and plain containers; a ConfigError names the first key that cannot."""
    if isinstance(value, np.generic):  # before PLAIN: np.float64 is a float, yet pickles as a numpy object
        return value.item()
    if isinstance(value, PLAIN):
        return value
    if isinstance(value, Mapping) or (hasattr(value, "items") and callable(value.items)):
        return {k: plain(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple) or type(value).__name__ == "ListConfig":
        converted = [plain(v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(converted) if isinstance(value, tuple) else converted
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value))
    if isinstance(value, PurePath):
        return str(value)
    raise ConfigError(f"{key} is a {type(value).__module__}.{type(value).__qualname__}, which has no plain form")


def convert(source: Path, target: Path) -> None:
    if not source.is_file():
        raise ConfigError(f"{source} is not a file; pass the checkpoint to convert")
    if target.exists():
        raise ConfigError(f"{target} exists; name a new file for the converted checkpoint")
    checkpoint = plain(torch.load(source, map_location="cpu", weights_only=False))
    if not isinstance(checkpoint, dict) or "model_config" not in checkpoint:
        raise ConfigError(f"{source} is not a vrnn-lightning checkpoint; pass one written by vrnn_lightning.train")
    check_named_classes(checkpoint)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    atomic_write(buffer.getvalue(), target)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a checkpoint you trust (it is fully unpickled)")
    parser.add_argument("target", type=Path, help="the new, plain checkpoint")
    args = parser.parse_args(argv)
    try:
        convert(args.source, args.target)
    except ConfigError as err:
        exit_with(str(err))
    print(f"wrote {args.target}")


if __name__ == "__main__":
    main()

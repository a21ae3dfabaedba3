"""`data=arrays data.path=...`: your own real-valued sequences, each T_i x D, from numpy files (no pickles).

Two layouts:
- a `.npz` file holding, per split, the sequences stacked along time and their lengths:
  `train` (sum T_i, D) float and `train_lengths` (N,) int, and likewise `val`/`val_lengths` and
  `test`/`test_lengths` where the file has those splits (write one with `save_npz`);
- a folder of `.npy` files, one (T_i, D) sequence each, in `train/`, `val/`, `test/` subfolders where it has
  splits, or all at its top level.
A split the file lacks is drawn from the training sequences by a seeded shuffle: `data.val_fraction` and
`data.test_fraction` (10% each by default).
"""

from pathlib import Path
from typing import Any

import numpy as np

from vrnn_lightning.data.real_valued import SPLITS, RealValuedDataModule
from vrnn_lightning.errors import ConfigError


def save_npz(path: str | Path, splits: dict[str, list[np.ndarray]]) -> Path:
    """Write split name -> list of (T_i, D) arrays in the `.npz` layout this module reads."""
    arrays: dict[str, np.ndarray] = {}
    for split, sequences in splits.items():
        arrays[split] = np.concatenate([np.asarray(s, dtype=np.float32) for s in sequences])
        arrays[f"{split}_lengths"] = np.array([len(s) for s in sequences], dtype=np.int64)
    np.savez(path, **arrays)
    return Path(path)


def read_npz(path: Path) -> dict[str, list[np.ndarray]]:
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as err:  # numpy raises several types for a damaged file
        raise ConfigError(f"{path} cannot be read as .npz ({err}); write it with numpy.savez") from None
    with archive:
        if "train" not in archive.files:
            raise ConfigError(f"{path} holds {archive.files} but no 'train'; see data/arrays.py for the layout")
        splits = {}
        for split in SPLITS:
            if split not in archive.files:
                continue
            if f"{split}_lengths" not in archive.files:
                raise ConfigError(f"{path} holds '{split}' but no '{split}_lengths' (the length of each sequence)")
            values, lengths = archive[split], archive[f"{split}_lengths"]
            if values.ndim != 2 or lengths.ndim != 1 or (lengths < 1).any() or lengths.sum() != len(values):
                raise ConfigError(
                    f"{path}: '{split}' {values.shape} and '{split}_lengths' (summing to {int(lengths.sum())}) "
                    "do not fit; it needs (total steps, dims) and lengths >= 1 that sum to the total"
                )
            splits[split] = np.split(values, np.cumsum(lengths)[:-1]) if len(lengths) else []
        return splits


def read_npy_files(folder: Path) -> list[np.ndarray]:
    arrays = []
    for path in sorted(folder.glob("*.npy")):
        try:
            arrays.append(np.load(path, allow_pickle=False))
        except Exception as err:
            raise ConfigError(f"{path} cannot be read as .npy ({err}); write it with numpy.save") from None
    return arrays


def read_npy_folder(folder: Path) -> dict[str, list[np.ndarray]]:
    if (folder / "train").is_dir():
        return {split: read_npy_files(folder / split) for split in SPLITS if (folder / split).is_dir()}
    return {"train": read_npy_files(folder)}


class ArraysDataModule(RealValuedDataModule):
    """`data=arrays data.path=...`: a `.npz` file or a folder of `.npy` files (see the module's docstring)."""

    def __init__(self, path: str | None = None, **options: Any) -> None:
        self.check_settings({"path": path, **options})
        self.path = Path(path).expanduser()
        self.source = f"data.path={path}"
        super().__init__(**options)

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        path = settings.get("path")
        if path is None or str(path).strip() == "":
            raise ConfigError("data=arrays needs data.path=<a .npz file or a folder of .npy files>")
        if not Path(str(path)).expanduser().exists():
            raise ConfigError(f"data.path={path} does not exist; give a .npz file or a folder of .npy files")
        if Path(str(path)).is_file() and Path(str(path)).suffix != ".npz":
            raise ConfigError(f"data.path={path} is not a .npz file or a folder of .npy files; save it as one of those")
        super().check_settings(settings)

    def read_splits(self) -> dict[str, list[np.ndarray]]:
        if not self.path.exists():
            raise ConfigError(f"{self.source} does not exist; give a .npz file or a folder of .npy files")
        if self.path.is_dir():
            splits = read_npy_folder(self.path)
            if not splits.get("train"):
                raise ConfigError(f"{self.source} holds no .npy files (in train/ or at its top); add some")
            return splits
        if self.path.suffix != ".npz":
            raise ConfigError(f"{self.source} is not a .npz file or a folder of .npy files; save it as one of those")
        return read_npz(self.path)

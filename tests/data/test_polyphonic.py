"""Polyphonic piano rolls: reading the .mat files, checks, random crops, whole pieces by length, MIDI."""

import hashlib
from pathlib import Path

import mido
import numpy as np
import pytest
import scipy.io
import torch

from vrnn_lightning.data.midi import TICKS_PER_STEP, write_midi
from vrnn_lightning.data.polyphonic import KEYS, PolyphonicDataModule, read_pieces
from vrnn_lightning.data.variable_length import RandomCrops, by_length
from vrnn_lightning.errors import ConfigError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "polyphonic"


def write_mat(path: Path, lengths: dict[str, list[int]], seed: int = 0, width: int = KEYS) -> Path:
    """A small piano-roll .mat in the published layout: 1 x N cells of (T_i x 88) uint8 rolls."""
    rng = np.random.default_rng(seed)
    cells = {}
    for key, split_lengths in lengths.items():
        cell = np.empty((1, len(split_lengths)), dtype=object)
        for i, n in enumerate(split_lengths):
            cell[0, i] = (rng.random((n, width)) < 0.05).astype(np.uint8)
        cells[key] = cell
    scipy.io.savemat(str(path), cells)
    return path


LENGTHS = {"traindata": [25, 40, 130, 60, 33], "validdata": [30, 12, 50], "testdata": [20, 44, 70, 26]}


@pytest.fixture
def fixture_module(tmp_path):
    path = write_mat(tmp_path / "JSB_Chorales.mat", LENGTHS)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    def make(**kwargs) -> PolyphonicDataModule:
        options = dict(
            root=str(tmp_path),
            download=False,
            checksums={"JSB_Chorales.mat": digest},
            max_len=32,
            batch_size=3,
            batches_per_epoch=4,
            eval_batch_size=2,
        )
        return PolyphonicDataModule(**{**options, **kwargs})

    return make


def test_pieces_are_read_whole_and_binary(tmp_path):
    pieces = read_pieces(write_mat(tmp_path / "a.mat", LENGTHS))
    assert [len(p) for p in pieces["test"]] == LENGTHS["testdata"]
    assert all(p.shape[1] == KEYS and set(p.unique().tolist()) <= {0.0, 1.0} for p in pieces["train"])


def test_training_crops_are_at_most_max_len_with_a_mask_of_their_lengths():
    pieces = [torch.arange(n).float().unsqueeze(1).expand(n, KEYS) for n in (10, 50, 7)]
    batch = next(iter(RandomCrops(pieces, max_len=20, batch_size=16, num_batches=1, seed=0)))
    lengths = batch.mask.sum(1).long()
    assert batch.x.shape == (16, int(lengths.max()), KEYS) and set(lengths.tolist()) <= {7, 10, 20}
    for x, n in zip(batch.x, lengths.tolist(), strict=True):
        steps = x[:n, 0]
        assert torch.equal(steps - steps[0], torch.arange(n).float())  # a contiguous crop of one piece
        assert (x[n:] == 0).all()


def test_evaluation_reads_every_piece_whole_in_batches_of_similar_length():
    pieces = [torch.ones(n, KEYS) for n in (30, 5, 12, 50, 6)]
    batches = by_length(pieces, 2)
    assert [b.mask.sum(1).tolist() for b in batches] == [[5.0, 6.0], [12.0, 30.0], [50.0]]
    assert sum(b.mask.sum() for b in batches) == sum(len(p) for p in pieces)


def test_data_module_serves_masked_batches(fixture_module):
    dm = fixture_module()
    dm.setup()
    train = list(dm.train_dataloader())
    assert len(train) == 4 and all(b.x.shape[1] <= 32 and b.x.shape[-1] == KEYS for b in train)
    test_steps = sum(int(b.mask.sum()) for b in dm.test_dataloader())
    assert test_steps == sum(LENGTHS["testdata"])
    assert dm.metadata["figures"]["ll"] == {"per": "step", "scale": -1.0, "offset": 0.0}


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(name="bach"), "data.name='bach' is not a polyphonic set; choose one of jsb, nottingham"),
        (dict(max_len=1), "data.max_len=1 must be a whole number >= 2"),
    ],
)
def test_bad_options_are_one_line(fixture_module, options, message):
    with pytest.raises(ConfigError, match=message):
        fixture_module(**options)


def test_a_corrupt_file_fails_its_checksum(fixture_module, tmp_path):
    dm = fixture_module()
    (tmp_path / "JSB_Chorales.mat").write_bytes(b"not a mat file")
    with pytest.raises(ConfigError, match="has sha256 .* expected .* downloaded again"):
        dm.prepare_data()


def test_a_mat_without_the_splits_or_not_88_wide_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="lacks validdata, testdata"):
        read_pieces(write_mat(tmp_path / "a.mat", {"traindata": [5]}))
    with pytest.raises(ConfigError, match=r"traindata piece 0 has shape \(5, 12\), not \(steps, 88\)"):
        read_pieces(write_mat(tmp_path / "b.mat", {k: [5] for k in LENGTHS}, width=12))


def test_midi_holds_each_held_key_as_one_note(tmp_path):
    roll = torch.zeros(6, KEYS)
    roll[1:4, 39] = 1  # middle C (MIDI 60) for three steps
    roll[2, 0] = 1  # A0 for one
    track = mido.MidiFile(str(write_midi(tmp_path / "a.mid", roll, lowest_midi=21))).tracks[0]
    notes = [(m.type, m.note, m.time) for m in track if m.type in ("note_on", "note_off")]
    assert notes == [
        ("note_on", 60, TICKS_PER_STEP),
        ("note_on", 21, TICKS_PER_STEP),
        ("note_off", 21, TICKS_PER_STEP),
        ("note_off", 60, TICKS_PER_STEP),
    ]


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared polyphonic files are not beside the repository")
@pytest.mark.parametrize(
    ("name", "counts"),
    [
        ("jsb", (229, 76, 77)),
        ("nottingham", (694, 173, 170)),
        ("musedata", (524, 135, 124)),
        ("pianomidi", (87, 12, 25)),
    ],
)
def test_the_published_files_pass_their_checksums_with_the_standard_splits(name, counts):
    dm = PolyphonicDataModule(name=name, root=str(SHARED), download=False)
    dm.setup()
    assert tuple(len(dm.pieces[s]) for s in ("train", "val", "test")) == counts


def write_srnn_npz(path: Path, test_lengths: list[int], seed: int = 0) -> Path:
    """A small file in the SRNN authors' layout: crops of 100 steps, test pieces padded with a mask."""
    rng = np.random.default_rng(seed)
    rolls = lambda *shape: (rng.random((*shape, KEYS)) < 0.1).astype(np.float32)
    test = rolls(len(test_lengths), max(test_lengths))
    mask = (np.arange(test.shape[1]) < np.array(test_lengths)[:, None]).astype(np.float32)
    test *= mask[:, :, None]
    np.savez(path, x_train=rolls(6, 100), x_valid=rolls(2, 100), x_test=test, mask_test=mask, u_test=test)
    return path


def test_the_srnn_authors_files_give_their_crops_and_whole_masked_test_pieces(tmp_path):
    npz = write_srnn_npz(tmp_path / "jsb_raw_batchsize16_seqlen100.npz", [30, 12, 51])
    digest = hashlib.sha256(npz.read_bytes()).hexdigest()
    dm = PolyphonicDataModule(
        name="jsb", root=str(tmp_path), download=False, source="srnn", checksums={npz.name: digest}
    )
    dm.setup()
    assert [len(p) for p in dm.pieces["train"]] == [100] * 6 and len(dm.pieces["val"]) == 2
    assert [len(p) for p in dm.pieces["test"]] == [30, 12, 51]
    assert dm.metadata["source"] == "srnn"
    with pytest.raises(ConfigError, match="data.source='midi' is not a source of piano rolls"):
        PolyphonicDataModule(source="midi")
    (tmp_path / "bad").mkdir()
    np.savez(tmp_path / "bad" / npz.name, x_train=np.zeros((2, 3)))
    bad = tmp_path / "bad" / npz.name
    broken = PolyphonicDataModule(
        root=str(tmp_path / "bad"), download=False, source="srnn", checksums={npz.name: _sha(bad)}
    )
    with pytest.raises(ConfigError, match="cannot be read as the SRNN authors' piano rolls"):
        broken.setup()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


SHARED_SRNN = SHARED.parent / "polyphonic_srnn"


@pytest.mark.skipif(not SHARED_SRNN.is_dir(), reason="the SRNN authors' files are not beside the repository")
@pytest.mark.parametrize(
    ("name", "test_steps"), [("jsb", 9396), ("nottingham", 37062), ("musedata", 67391), ("pianomidi", 17328)]
)
def test_the_srnn_authors_files_pass_their_checksums_on_their_own_grid(name, test_steps):
    dm = PolyphonicDataModule(name=name, root=str(SHARED_SRNN), download=False, source="srnn")
    dm.setup()
    assert sum(len(p) for p in dm.pieces["test"]) == test_steps

"""Real-valued sequences: .npz / .npy / .ts reading, splits, normalisation and its log-Jacobian, bad files."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vrnn_lightning.data.arrays import ArraysDataModule, save_npz
from vrnn_lightning.data.real_valued import denormalize
from vrnn_lightning.data.uea import UEADataModule, read_ts
from vrnn_lightning.errors import ConfigError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "uea"
LENGTHS = {"train": [7, 12, 9, 20, 15, 11, 8, 13], "val": [10, 6], "test": [9, 14, 7]}


def make_sequences(lengths: list[int], width: int = 3, seed: int = 0, scale: float = 1.0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [scale * (5.0 + 2.0 * rng.standard_normal((n, width))).astype(np.float32) for n in lengths]


def make_splits(width: int = 3, scale: float = 1.0, splits=("train", "val", "test")) -> dict[str, list[np.ndarray]]:
    return {s: make_sequences(LENGTHS[s], width, seed=i, scale=scale) for i, s in enumerate(splits)}


def write_ts(path: Path, series: list[np.ndarray], labels: list[str] | None = None, header: str = "") -> Path:
    lines = ["# a comment", "@problemName Tiny", "@univariate false", f"@dimensions {series[0].shape[1]}"]
    lines += [f"@classLabel {'true 1 2' if labels else 'false'}", header, "@data"]
    for i, s in enumerate(series):
        fields = [",".join(f"{v:.6f}" for v in s[:, d]) for d in range(s.shape[1])]
        lines.append(":".join(fields + ([labels[i]] if labels else [])))
    path.write_text("\n".join(line for line in lines if line) + "\n")
    return path


def test_npz_round_trip_keeps_unequal_lengths_and_values(tmp_path):
    splits = make_splits()
    data = ArraysDataModule(path=str(save_npz(tmp_path / "d.npz", splits)))
    for split, originals in splits.items():
        read = [denormalize(s, data.normalization) for s in data.sequences[split]]
        assert [len(s) for s in read] == LENGTHS[split]
        assert all(np.allclose(r.numpy(), o, atol=1e-4) for r, o in zip(read, originals, strict=True))
    assert data.x_dim == 3


def test_the_training_split_is_normalised_to_zero_mean_and_unit_std(tmp_path):
    data = ArraysDataModule(path=str(save_npz(tmp_path / "d.npz", make_splits())))
    frames = torch.cat(data.sequences["train"])
    assert torch.allclose(frames.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(frames.std(0, correction=0), torch.ones(3), atol=1e-4)


def test_the_log_jacobian_makes_figures_independent_of_the_data_scale(tmp_path):
    small = ArraysDataModule(path=str(save_npz(tmp_path / "a.npz", make_splits())))
    large = ArraysDataModule(path=str(save_npz(tmp_path / "b.npz", make_splits(scale=10.0))))
    # the same normalised data: a model scores it alike, and in data units 10x wider data is less dense
    assert torch.allclose(torch.cat(small.sequences["test"]), torch.cat(large.sequences["test"]), atol=1e-4)
    offsets = [d.metadata["figures"]["ll"]["offset"] for d in (small, large)]
    assert offsets[1] - offsets[0] == pytest.approx(3 * math.log(10.0), rel=1e-5)
    assert small.metadata["figures"]["ll_per_sequence"]["per"] == "sequence"


def test_a_rebuilt_module_uses_the_checkpoints_statistics(tmp_path):
    trained = ArraysDataModule(path=str(save_npz(tmp_path / "a.npz", make_splits())))
    assert trained.hparams["normalization"] == trained.normalization
    other_file = str(save_npz(tmp_path / "b.npz", make_splits(scale=3.0)))
    other = ArraysDataModule(**{**trained.hparams, "path": other_file})
    assert other.normalization == trained.normalization  # not recomputed from the other file


def test_missing_splits_are_drawn_from_training_by_a_seeded_shuffle(tmp_path):
    path = save_npz(tmp_path / "d.npz", {"train": make_sequences(list(range(5, 25)))})
    first, again = ArraysDataModule(path=str(path), seed=3), ArraysDataModule(path=str(path), seed=3)
    assert [len(first.sequences[s]) for s in ("train", "val", "test")] == [16, 2, 2]
    assert [len(s) for s in first.sequences["test"]] == [len(s) for s in again.sequences["test"]]
    other = ArraysDataModule(path=str(path), seed=4)
    assert [len(s) for s in other.sequences["test"]] != [len(s) for s in first.sequences["test"]]


def test_a_folder_of_npy_files_with_and_without_split_folders(tmp_path):
    for split, sequences in make_splits().items():
        (tmp_path / "split" / split).mkdir(parents=True)
        for i, s in enumerate(sequences):
            np.save(tmp_path / "split" / split / f"{i:03d}.npy", s)
            np.save(tmp_path / "flat" / f"{split}{i:03d}.npy", s) if (tmp_path / "flat").is_dir() else None
    data = ArraysDataModule(path=str(tmp_path / "split"))
    assert [len(s) for s in data.sequences["val"]] == LENGTHS["val"]
    (tmp_path / "flat").mkdir()
    for i, s in enumerate(make_sequences(list(range(5, 25)))):
        np.save(tmp_path / "flat" / f"{i:03d}.npy", s)
    assert sum(len(ArraysDataModule(path=str(tmp_path / "flat")).sequences[s]) for s in ("train", "val", "test")) == 20


def test_ts_round_trip_with_unequal_lengths_and_labels(tmp_path):
    series = make_sequences([7, 12, 9], width=4)
    read, labels = read_ts(write_ts(tmp_path / "Tiny_TRAIN.ts", series, labels=["1", "2", "1"]))
    assert labels == ["1", "2", "1"]
    assert [s.shape for s in read] == [(7, 4), (12, 4), (9, 4)]
    assert all(np.allclose(r, s, atol=1e-5) for r, s in zip(read, series, strict=True))


def test_uea_module_reads_train_and_test_and_splits_off_validation(tmp_path):
    write_ts(tmp_path / "Tiny_TRAIN.ts", make_sequences(list(range(5, 25))))
    write_ts(tmp_path / "Tiny_TEST.ts", make_sequences([6, 9, 30], seed=1))
    data = UEADataModule(name="Tiny", root=str(tmp_path), val_fraction=0.25)
    assert [len(data.sequences[s]) for s in ("train", "val", "test")] == [15, 5, 3]
    assert data.metadata["set"] == "Tiny"


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data/uea (the suite passes without it)")
def test_japanese_vowels_has_the_published_counts():
    data = UEADataModule(name="JapaneseVowels", root=str(SHARED), download=False)
    counts = [len(data.sequences[s]) for s in ("train", "val", "test")]
    assert counts == [243, 27, 370] and data.x_dim == 12
    lengths = [len(s) for split in data.sequences.values() for s in split]
    assert min(lengths) == 7 and max(lengths) == 29


def bad(tmp_path: Path, splits: dict) -> str:
    with pytest.raises(ConfigError) as err:
        ArraysDataModule(path=str(save_npz(tmp_path / "bad.npz", splits)))
    return str(err.value)


def test_bad_arrays_are_one_line_naming_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        ArraysDataModule(path=str(tmp_path / "nothing.npz"))
    (tmp_path / "d.csv").write_text("1,2\n")
    with pytest.raises(ConfigError, match="not a .npz file or a folder of .npy files"):
        ArraysDataModule(path=str(tmp_path / "d.csv"))
    with pytest.raises(ConfigError, match="needs data.path"):
        ArraysDataModule()
    nan = make_splits()
    nan["train"][2][4, 1] = np.nan
    assert "train split: sequence 2 holds nan at step 4, dim 1" in bad(tmp_path, nan)
    inf = make_splits()
    inf["test"][0][3, 0] = np.inf
    assert "test split: sequence 0 holds inf at step 3" in bad(tmp_path, inf)
    splits = make_splits()
    np.savez(
        tmp_path / "e.npz",
        train=np.concatenate(splits["train"]),
        train_lengths=LENGTHS["train"],
        val=np.zeros((0, 3)),
        val_lengths=np.zeros(0, int),
    )
    with pytest.raises(ConfigError, match="the val split holds no sequences"):
        ArraysDataModule(path=str(tmp_path / "e.npz"))


def test_ragged_widths_are_refused(tmp_path):
    (tmp_path / "f").mkdir()
    np.save(tmp_path / "f" / "a.npy", np.zeros((5, 3), np.float32))
    np.save(tmp_path / "f" / "b.npy", np.zeros((5, 4), np.float32))
    with pytest.raises(ConfigError, match="sequence 1 is 4 wide, sequence 0 is 3"):
        ArraysDataModule(path=str(tmp_path / "f"))
    np.savez(tmp_path / "w.npz", train=np.zeros((5, 3)), train_lengths=np.array([2, 2]))
    with pytest.raises(ConfigError, match="do not fit"):
        ArraysDataModule(path=str(tmp_path / "w.npz"))


def test_bad_ts_files_name_the_line(tmp_path):
    good = make_sequences([6, 8])
    write_ts(tmp_path / "A_TRAIN.ts", good, header="@equalLength false")
    text = (tmp_path / "A_TRAIN.ts").read_text().replace("@equalLength false", "equalLength false")
    (tmp_path / "A_TRAIN.ts").write_text(text)
    with pytest.raises(ConfigError, match=r"A_TRAIN.ts, line \d+: 'equalLength false' is neither a header"):
        read_ts(tmp_path / "A_TRAIN.ts")
    write_ts(tmp_path / "B_TRAIN.ts", good)
    (tmp_path / "B_TRAIN.ts").write_text((tmp_path / "B_TRAIN.ts").read_text() + "1,2:3,x,4:5\n")
    with pytest.raises(ConfigError, match=r"line \d+: could not convert string to float: 'x'"):
        read_ts(tmp_path / "B_TRAIN.ts")
    write_ts(tmp_path / "C_TRAIN.ts", good)
    (tmp_path / "C_TRAIN.ts").write_text((tmp_path / "C_TRAIN.ts").read_text() + "1,2:3,4:5\n")
    with pytest.raises(ConfigError, match=r"its dims have \[1, 2\] values"):
        read_ts(tmp_path / "C_TRAIN.ts")
    with pytest.raises(ConfigError, match="put it there"):
        UEADataModule(name="Missing", root=str(tmp_path))

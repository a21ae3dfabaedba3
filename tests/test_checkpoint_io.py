"""A checkpoint is under its final name only when whole: the old file survives a write that dies midway."""

import os
from pathlib import Path

import pytest
import torch

from vrnn_lightning.training.checkpoint_io import AtomicCheckpointIO, atomic_write


def test_atomic_write_replaces_the_file_through_a_temporary_file_in_the_same_folder(tmp_path, monkeypatch):
    target = tmp_path / "last.ckpt"
    target.write_bytes(b"old")
    renames: list[tuple[str, str]] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (renames.append((src, dst)), real_replace(src, dst)))
    atomic_write(b"new", target)
    assert target.read_bytes() == b"new"
    [(src, dst)] = renames
    assert Path(src).parent == tmp_path and Path(dst) == target
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_write_that_dies_before_the_rename_leaves_the_old_file_and_no_litter(tmp_path, monkeypatch, failing):
    target = tmp_path / "last.ckpt"
    target.write_bytes(b"old and whole")

    def die(*args):
        raise KeyboardInterrupt  # as a signal would, midway

    monkeypatch.setattr(os, failing, die)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(b"new", target)
    assert target.read_bytes() == b"old and whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_checkpoint_io_round_trips_a_checkpoint_and_creates_its_folder(tmp_path):
    path = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.arange(3.0)}, "global_step": 7}, path)
    loaded = AtomicCheckpointIO().load_checkpoint(path)
    assert loaded["global_step"] == 7 and torch.equal(loaded["state_dict"]["w"], torch.arange(3.0))


def test_a_checkpoint_gets_the_permissions_of_any_new_file(tmp_path):
    old_umask = os.umask(0o027)
    try:
        atomic_write(b"weights", tmp_path / "last.ckpt")
        (tmp_path / "plain").write_bytes(b"x")
    finally:
        os.umask(old_umask)
    assert (tmp_path / "last.ckpt").stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777 == 0o640

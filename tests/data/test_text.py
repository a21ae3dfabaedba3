import itertools

import pytest
import torch

from vrnn_lightning.data import CharDataModule, Vocabulary, load_corpus
from vrnn_lightning.data.text import RandomWindows, StreamWindows, sequential_windows, split_points
from vrnn_lightning.errors import ConfigError


def test_embedded_corpus_is_tiny_shakespeare():
    text = load_corpus()
    assert len(text) == 1_115_394
    assert len(set(text)) == 65
    assert text.startswith("First Citizen:")


def test_vocabulary_round_trip():
    vocab = Vocabulary("hello world")
    assert vocab.chars == " dehlorw"
    ids = vocab.encode("hold")
    assert ids.dtype == torch.long and vocab.decode(ids) == "hold"


def test_vocabulary_names_unknown_characters():
    with pytest.raises(ConfigError, match="'xz' are not in the vocabulary"):
        Vocabulary("abc").encode("axz")


def test_split_matches_nanogpt_and_halves_the_held_out_tenth():
    train_end, val_end = split_points(1_115_394)
    assert train_end == int(1_115_394 * 0.9) == 1_003_854
    assert val_end - train_end == 55_770 and 1_115_394 - val_end == 55_770


def test_datamodule_splits_partition_the_corpus():
    dm = CharDataModule(seq_len=64)
    text = load_corpus()
    assert len(dm.train_ids) + len(dm.val_ids) + len(dm.test_ids) == len(text)
    assert dm.vocab.decode(dm.val_ids[:20]) == text[1_003_854:1_003_874]
    assert dm.vocab.decode(dm.test_ids[-20:]) == text[-20:]
    assert dm.x_dim == 65


def test_random_windows_are_contiguous_slices_and_reseeded_each_epoch():
    data = torch.arange(1000)
    windows = RandomWindows(data, seq_len=16, batch_size=8, num_batches=3, seed=0)
    first = [b.x for b in windows]
    assert len(first) == 3 and all(b.shape == (8, 16) for b in first)
    assert all(torch.equal(b[:, 1:] - b[:, :-1], torch.ones(8, 15, dtype=torch.long)) for b in first)
    second = [b.x for b in windows]
    assert not torch.equal(first[0], second[0])


def test_sequential_windows_cover_the_split_exactly_once():
    data = torch.arange(103)
    batches = [b.x for b in sequential_windows(data, seq_len=10, batch_size=4)]
    assert [tuple(b.shape) for b in batches] == [(4, 10), (4, 10), (2, 10), (1, 3)]
    assert torch.equal(torch.cat([b.flatten() for b in batches]), data)


def test_any_utf8_file_can_be_the_corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("ünïcödé text, " * 200, encoding="utf-8")
    dm = CharDataModule(path=str(path), seq_len=32)
    assert "ü" in dm.vocab.chars


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "is not a file; point it at a UTF-8 text file"),
        (b"", "is empty"),
        (b"\xff\xfe\x00bad" * 100, "is not UTF-8 text"),
        (b"too short", "too few for a training window of data.seq_len=128"),
    ],
)
def test_bad_corpus_gives_one_line_naming_the_fix(tmp_path, content, message):
    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as err:
        CharDataModule(path=str(path), seq_len=128)
    assert "\n" not in str(err.value)


def test_sizes_must_be_positive():
    with pytest.raises(ConfigError, match="data.seq_len must be a positive integer"):
        CharDataModule(seq_len=0)


def test_ranks_take_disjoint_slices_of_the_single_process_global_batch():
    data = torch.arange(1000)
    single = RandomWindows(data, seq_len=16, batch_size=8, num_batches=3, seed=5)
    ranks = [RandomWindows(data, seq_len=16, batch_size=4, num_batches=3, seed=5, rank=r, world_size=2) for r in (0, 1)]
    for whole, first, second in zip(single, *ranks, strict=True):
        assert torch.equal(torch.cat([first.x, second.x]), whole.x)


def test_stream_windows_continue_each_stream_and_start_over_after_the_last_window():
    data = torch.arange(100)
    windows = StreamWindows(data, seq_len=4, batch_size=3, num_batches=5)  # 3 streams of 33: 8 windows each
    batches = list(windows) + list(windows)  # two epochs of 5 batches
    assert [b.first for b in batches] == [True] + [False] * 7 + [True, False]
    assert torch.equal(batches[0].x[:, 0], torch.tensor([0, 33, 66]))
    for before, after in itertools.pairwise(batches[:8]):
        assert torch.equal(after.x[:, 0], before.x[:, -1] + 1)  # every row goes on where it stopped
    assert torch.equal(batches[8].x, batches[0].x)


def test_stream_windows_give_each_rank_its_own_streams_and_refuse_another_layout():
    data = torch.arange(100)
    ranks = [next(iter(StreamWindows(data, 4, 2, 3, rank=r, world_size=2))).x[:, 0] for r in (0, 1)]
    assert torch.equal(torch.cat(ranks), torch.tensor([0, 25, 50, 75]))
    saved = StreamWindows(data, 4, 2, 3).position()
    with pytest.raises(ConfigError, match=r"training streams .* are \[3, 4, 33\], its checkpoint's \[2, 4, 50\]"):
        StreamWindows(data, 4, 3, 3).seek(saved)
    with pytest.raises(ConfigError, match="shorter than one window of data.seq_len=40"):
        StreamWindows(data, 40, 3, 3)

"""The frame data: generators deterministic per seed, digits and balls inside the frame and from the right
split, bounces as specified, your own videos read, padded and checked; predicted futures scored."""

import numpy as np
import pytest
import torch

from tests.helpers.runs import FIXTURE, FIXTURE_SUMS
from vrnn_lightning.data.bouncing_balls import BouncingBallsDataModule, simulate
from vrnn_lightning.data.moving_mnist import MovingMNISTDataModule, render, trajectories
from vrnn_lightning.data.predictions import (
    best_of_futures,
    frame_scores,
    future_pictures,
    predict_futures,
    scored_futures,
    write_gif,
)
from vrnn_lightning.data.video_files import FramesDataModule
from vrnn_lightning.errors import ConfigError

SMALL = {"train_size": 8, "val_size": 6, "test_size": 5, "batch_size": 4, "eval_batch_size": 3}
SUMS = dict(pair.split(":") for pair in FIXTURE_SUMS.split(","))


def moving(**settings):
    return MovingMNISTDataModule(root=str(FIXTURE), download=False, checksums=SUMS, **{**SMALL, **settings})


def test_moving_mnist_is_the_same_for_a_seed_and_differs_between_seeds():
    first, again, other = moving(seed=3), moving(seed=3), moving(seed=4)
    for module in (first, again, other):
        module.setup()
    assert torch.equal(first.videos["test"], again.videos["test"])
    assert torch.equal(next(iter(first.train_dataloader())).x, next(iter(again.train_dataloader())).x)
    assert not torch.equal(first.videos["test"], other.videos["test"])
    assert first.videos["val"].shape == (6, 15, 1, 32, 32) and first.videos["test"].shape == (5, 25, 1, 32, 32)
    assert set(first.videos["test"].unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("deterministic", [False, True])
def test_digits_stay_in_the_frame_and_bounce_as_specified(deterministic):
    room, speed = 10, 3
    corners = trajectories(64, 2, 40, room, speed, deterministic, torch.Generator().manual_seed(0))
    assert corners.min() >= 0 and corners.max() <= room
    moves = corners.diff(dim=2)  # (count, digits, steps - 1, 2)
    assert moves.abs().max() <= speed
    at_low_wall = corners[:, :, 1:-1] == 0
    arrived = moves[:, :, :-1] < 0  # it moved onto the wall
    leaving = moves[:, :, 1:]
    bounced = at_low_wall & arrived
    assert bounced.any()
    assert (leaving[bounced] > 0).all()  # away from the wall it hit, on that axis
    if deterministic:  # a reflection keeps the speed (the arriving move may have been cut short by the wall)
        assert (leaving[bounced] >= arrived_size(moves)[bounced]).all()
    else:  # a new random speed: several different ones after bounces
        assert len(leaving[bounced].unique()) > 1


def arrived_size(moves):
    """The size of the move that arrived at each step (aligned with `leaving`)."""
    return moves[:, :, :-1].abs()


def test_digits_come_from_their_own_split():
    module = moving(digits=2)
    module.setup()
    shapes = {split: images.shape for split, images in module.digit_images.items()}
    assert shapes["train"][1:] == (14, 14)
    # the fixture's 300 test digits split by index: 240 / 30 / 30, and the run says so
    assert [shapes[s][0] for s in ("train", "val", "test")] == [240, 30, 30] and "split by index" in module.note
    module.digit_images = {
        s: torch.full((3, 14, 14), level) for s, level in (("train", 0.2), ("val", 0.4), ("test", 0.6))
    }
    for split, level in (("train", 0.2), ("val", 0.4), ("test", 0.6)):
        frames = module.make(4, 6, torch.Generator().manual_seed(0), split)
        levels = set((frames * 10).round().unique().tolist())
        assert levels <= {0.0, 10 * level, min(10.0, 20 * level)} and 10 * level in levels, split


def test_render_places_a_digit_at_its_corner():
    digit = torch.zeros(1, 1, 3, 3)
    digit[0, 0, 0, 0] = 1.0
    frames = render(digit, torch.tensor([[[[2, 5]]]]), 8)  # (1, 1, 1, 8, 8)
    assert frames[0, 0, 0, 2, 5] == 1 and frames.sum() == 1


def test_balls_stay_in_the_box_keep_their_speed_off_walls_and_are_drawn():
    centres = simulate(32, 1, 60, 20, 2.5, (1.0, 1.5), np.random.default_rng(0))
    assert centres.min() >= 2.5 - 1e-9 and centres.max() <= 20 - 2.5 + 1e-9
    module = BouncingBallsDataModule(frame_size=20, radius=2.5, seed=1, **SMALL)
    again = BouncingBallsDataModule(frame_size=20, radius=2.5, seed=1, **SMALL)
    module.setup()
    again.setup()
    assert torch.equal(module.videos["val"], again.videos["val"])
    lit = module.videos["val"].sum((2, 3, 4))  # (videos, frames): one disc of radius 2.5 lights about 20 pixels
    assert lit.min() >= 12 and lit.max() <= 30


def test_balls_exchange_momentum_when_they_meet():
    rng = np.random.default_rng(0)
    centres = simulate(200, 2, 80, 16, 3.0, (1.0, 2.0), rng)
    gaps = np.linalg.norm(centres[:, :, 0] - centres[:, :, 1], axis=-1)
    assert gaps[:, 0].min() >= 6.0  # they start apart
    assert (gaps < 6.0).any()  # they meet
    assert gaps.min() > 6.0 - 2 * 2.0  # and part again within a step: never through one another


def write_videos(tmp_path, lengths=(3, 4, 5, 6, 7, 8)):
    videos = (np.random.default_rng(0).random((len(lengths), 8, 8, 8)) * 255).astype(np.uint8)
    np.savez(tmp_path / "videos.npz", videos=videos, lengths=np.array(lengths))
    return tmp_path / "videos.npz", videos


def test_your_videos_are_split_padded_and_masked(tmp_path):
    path, _ = write_videos(tmp_path)
    module = FramesDataModule(path=str(path), batch_size=2, eval_batch_size=8, val_fraction=0.2, test_fraction=0.2)
    module.setup()
    assert module.x_dim == [1, 8, 8]
    assert sum(len(module.splits[s]) for s in ("train", "val", "test")) == 6
    batch = next(iter(module.val_dataloader()))
    for row, length in enumerate(batch.mask.sum(1).long().tolist()):
        assert batch.x[row, length:].abs().sum() == 0
    first = module.splits["train"][0]
    assert first.max() <= 1 and torch.allclose(first * 255, first.mul(255).round())


def test_a_gif_folder_reads_as_videos(tmp_path):
    from PIL import Image

    for i in range(3):
        frames = [Image.fromarray(np.full((6, 10), 50 * k, np.uint8)) for k in range(2 + i)]
        frames[0].save(tmp_path / f"{i}.gif", save_all=True, append_images=frames[1:])
    module = FramesDataModule(path=str(tmp_path))
    module.setup()
    assert module.x_dim == [1, 6, 10]
    assert sorted(len(v) for s in module.splits.values() for v in s) == [2, 3, 4]


@pytest.mark.parametrize(
    ("arrays", "fragment"),
    [
        ({"v": np.full((3, 4, 8, 8), 2.0)}, "pixels from 2 to 2"),
        ({"v": np.zeros((3, 4, 8, 8)), "lengths": np.array([4, 0, 2])}, "'lengths' must give each"),
        ({"v": np.zeros((2, 4, 8, 8))}, "holds 2 videos"),
    ],
)
def test_bad_video_files_are_refused_in_one_line(tmp_path, arrays, fragment):
    np.savez(tmp_path / "v.npz", **arrays)
    with pytest.raises(ConfigError, match=fragment):
        FramesDataModule(path=str(tmp_path / "v.npz"))


def test_the_best_future_is_the_one_nearest_the_truth():
    truth = torch.rand(2, 3, 1, 16, 16)  # (B, n, C, H, W)
    futures = torch.rand(4, 2, 3, 1, 16, 16)
    futures[2, 0] = (truth[0] + 0.01).clamp(0, 1)
    futures[1, 1] = (truth[1] + 0.01).clamp(0, 1)
    scores = best_of_futures(futures, truth)
    assert scores["best"].tolist() == [2, 1]
    psnr, ssim = frame_scores(futures[2, 0], truth[0])
    assert torch.allclose(scores["psnr"][0], psnr) and (ssim > 0.9).all() and (psnr > 35).all()
    assert scores["ssim"].shape == (2, 3)


def test_futures_scored_one_at_a_time_are_the_futures_drawn_at_once():
    """eval scores each future before drawing the next (memory for one future); the draws and scores are those of
    drawing all N first, for the same generator."""
    from vrnn_lightning.models.frames import ConvFrames
    from vrnn_lightning.models.vrnn import VRNN

    torch.manual_seed(0)
    model = VRNN(ConvFrames([1, 8, 8], channels=4, feat_dim=12), h_dim=8, z_dim=3, x_feat_dim=12, z_feat_dim=4,
                 hidden_dim=8, mlp_layers=1).eval()  # fmt: skip
    x = torch.rand(3, 6, 1, 8, 8).round()
    drawn = predict_futures(model, x, 2, 4, 5, torch.Generator().manual_seed(7))  # (5, 3, 4, 1, 8, 8)
    psnr, ssim = scored_futures(model, x, 2, 4, 5, torch.Generator().manual_seed(7))
    assert psnr.shape == ssim.shape == (5, 3, 4)
    expected = frame_scores(drawn, x[:, 2:6].unsqueeze(0).expand_as(drawn))
    assert torch.allclose(psnr, expected[0]) and torch.allclose(ssim, expected[1])
    assert not torch.allclose(ssim[0], ssim[1])  # the futures differ: a check that could not pass by drawing one


def test_pictures_of_futures_have_a_row_per_future_and_a_frame_per_step(tmp_path):
    x = torch.rand(3, 7, 1, 8, 8)
    strip, frames = future_pictures(x, torch.rand(5, 3, 4, 1, 8, 8), 3, torch.Generator().manual_seed(0), count=2)
    assert strip.shape == (2 * 4 * 9 + 1, 7 * 9 + 1) and len(frames) == 7
    from PIL import Image

    with Image.open(write_gif(tmp_path / "f.gif", frames)) as gif:
        assert gif.n_frames == 7

"""A training loader's position (epoch, batches trained on) restores the exact stream of batches."""

import torch
from lightning.fabric.utilities.types import _Stateful

from vrnn_lightning.data.mnist import ShuffledImages
from vrnn_lightning.data.resumable import ResumableLoader
from vrnn_lightning.data.text import RandomWindows


def windows() -> RandomWindows:
    return RandomWindows(torch.arange(500), seq_len=8, batch_size=3, num_batches=5, seed=7)


def stream(loader: ResumableLoader, batches: int) -> list[torch.Tensor]:
    out, iterator = [], iter(loader)
    while len(out) < batches:
        try:
            out.append(next(iterator).x)
        except StopIteration:  # the next epoch, as Lightning starts it
            iterator = iter(loader)
    return out


def test_lightning_sees_a_stateful_loader():
    assert isinstance(ResumableLoader(windows()), _Stateful)


def test_a_loader_restored_mid_epoch_continues_the_same_stream():
    whole = stream(ResumableLoader(windows()), 13)  # 2 epochs and 3 batches
    for stop in (1, 3, 5, 7, 10):
        first = ResumableLoader(windows())
        iterator, seen = iter(first), []
        while len(seen) < stop:
            try:
                seen.append(next(iterator).x)
            except StopIteration:
                iterator = iter(first)
        state = first.state_dict()
        resumed = ResumableLoader(windows())
        resumed.load_state_dict(state)
        rest = stream(resumed, 13 - stop)
        assert all(torch.equal(a, b) for a, b in zip(seen + rest, whole, strict=True)), stop


def test_a_finished_epoch_resumes_at_the_next():
    loader = ResumableLoader(windows())
    first_epoch = [b.x for b in loader]
    assert loader.state_dict() == {"epoch": 1, "drawn": 0}
    resumed = ResumableLoader(windows())
    resumed.load_state_dict(loader.state_dict())
    resumed_first = next(iter(resumed)).x
    second_epoch = [b.x for b in loader]
    assert torch.equal(resumed_first, second_epoch[0]) and not torch.equal(resumed_first, first_epoch[0])


def test_images_resume_mid_epoch_with_the_same_binarisation():
    images = torch.randint(0, 256, (40, 4, 4), dtype=torch.uint8)
    whole = stream(ResumableLoader(ShuffledImages(images, 6, 0, 0, 1, dynamic=True)), 9)
    first = ResumableLoader(ShuffledImages(images, 6, 0, 0, 1, dynamic=True))
    iterator = iter(first)
    seen = [next(iterator).x for _ in range(4)]
    resumed = ResumableLoader(ShuffledImages(images, 6, 0, 0, 1, dynamic=True))
    resumed.load_state_dict(first.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(seen + stream(resumed, 5), whole, strict=True))

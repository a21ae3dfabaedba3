"""Character-level text: the embedded Tiny Shakespeare or any UTF-8 file, as windows of character ids.

Split as nanoGPT's char-level Shakespeare: the first 90% trains; of the held-out last 10%, the first half
validates and the second half tests. Training batches are random windows gathered in one vectorised index;
validation and test read their split once, in order, in non-overlapping windows (the last one shorter).
Figures: the bound in bits per character (`*/bpc`) beside nats per character.
"""

import hashlib
import lzma
import math
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from vrnn_lightning.data.base import Batch, SampleRequest, SequenceDataModule, figure, full_batch
from vrnn_lightning.data.resumable import EpochDraws, ResumableLoader
from vrnn_lightning.errors import ConfigError

EMBEDDED_CORPUS = "tinyshakespeare.txt.xz"
EMBEDDED_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
TRAIN_FRACTION = 0.9


def load_corpus(path: str | Path | None = None) -> str:
    """The text at `path`, or the embedded Tiny Shakespeare (checked against its sha256) when `path` is None."""
    if path is None:
        raw = lzma.decompress(resources.files("vrnn_lightning.data.assets").joinpath(EMBEDDED_CORPUS).read_bytes())
        digest = hashlib.sha256(raw).hexdigest()
        if digest != EMBEDDED_SHA256:
            raise ConfigError(f"embedded corpus has sha256 {digest}, expected {EMBEDDED_SHA256}; reinstall the package")
        return raw.decode("utf-8")
    if str(path).strip() == "":  # Path('') would be the working folder
        raise ConfigError(
            f"data.path={str(path)!r} is empty; point it at a UTF-8 text file, or unset it (data.path=null) for "
            "Tiny Shakespeare"
        )
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"data.path={str(path)!r} is not a file; point it at a UTF-8 text file, or unset it for Tiny Shakespeare"
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"data.path={str(path)!r} is not UTF-8 text ({err.reason} at byte {err.start}); convert it to UTF-8"
        ) from None
    if "\0" in text:
        raise ConfigError(
            f"data.path={str(path)!r} is binary (it holds NUL bytes), not text; point it at a UTF-8 text file"
        )
    if not text:
        raise ConfigError(f"data.path={str(path)!r} is empty; point it at a file with text in it")
    return text


class Vocabulary:
    """The sorted set of characters of a corpus; its string form is what checkpoints store."""

    def __init__(self, chars: str) -> None:
        self.chars = "".join(sorted(set(chars)))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> Tensor:
        unknown = sorted(set(text) - self.index.keys())
        if unknown:
            raise ConfigError(f"characters {''.join(unknown)!r} are not in the vocabulary; use only {self.chars!r}")
        return torch.tensor([self.index[c] for c in text], dtype=torch.long)

    def decode(self, ids: Tensor | list[int]) -> str:
        return "".join(self.chars[i] for i in torch.as_tensor(ids).tolist())


def split_points(n: int) -> tuple[int, int]:
    """End of train, end of validation: train [0, a), val [a, b), test [b, n)."""
    train_end = int(n * TRAIN_FRACTION)
    return train_end, train_end + (n - train_end) // 2


class RandomWindows(EpochDraws):
    """`num_batches` batches of `batch_size` random windows, each batch one gather from the corpus tensor."""

    def __init__(
        self,
        data: Tensor,
        seq_len: int,
        batch_size: int,
        num_batches: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__(seed, batch_size, rank, world_size)
        self.data, self.seq_len, self.num_batches = data, seq_len, num_batches

    def __len__(self) -> int:
        return self.num_batches

    def draws(self, generator: torch.Generator) -> Iterator[Batch]:
        offsets = torch.arange(self.seq_len)
        for _ in range(self.num_batches):
            starts = torch.randint(0, len(self.data) - self.seq_len + 1, (self.global_batch, 1), generator=generator)
            yield full_batch(self.data[starts[self.own] + offsets])  # (B, seq_len)


class StreamWindows(EpochDraws):
    """Truncated BPTT: the corpus cut into `batch_size * world_size` contiguous streams, each batch the next
    `seq_len` characters of every stream (rank r keeps its own streams), on from epoch to epoch; after the last
    whole window the streams start over from their beginnings, and such a batch says `first=True`."""

    def __init__(
        self, data: Tensor, seq_len: int, batch_size: int, num_batches: int, rank: int = 0, world_size: int = 1
    ) -> None:
        super().__init__(0, batch_size, rank, world_size)
        self.seq_len, self.num_batches = seq_len, num_batches
        streams = self.global_batch
        per_stream = len(data) // streams
        self.windows = per_stream // seq_len
        if self.windows < 1:
            raise ConfigError(
                f"data.stateful=true cuts {len(data)} training characters into {streams} streams "
                f"(data.batch_size x devices) of {per_stream}, shorter than one window of data.seq_len={seq_len}; "
                f"use a smaller data.batch_size or data.seq_len, or a longer text"
            )
        self.rows = data[: streams * per_stream].view(streams, per_stream)  # (streams, per_stream)

    @property
    def layout(self) -> list[int]:
        """What a resumed run must share with its checkpoint for its streams to continue: streams, window,
        characters per stream."""
        return [len(self.rows), self.seq_len, self.rows.shape[1]]

    def __len__(self) -> int:
        return self.num_batches

    def draws(self, generator: torch.Generator) -> Iterator[Batch]:
        for i in range(self.num_batches):
            window = (self.epoch * self.num_batches + i) % self.windows
            start = window * self.seq_len
            yield full_batch(self.rows[self.own, start : start + self.seq_len])._replace(first=window == 0)

    def position(self) -> dict[str, Any]:
        return {**super().position(), "layout": self.layout}

    def seek(self, position: dict[str, Any]) -> None:
        saved = position.get("layout")
        if saved is not None and list(saved) != self.layout:
            raise ConfigError(
                f"this run's training streams (streams, window, characters each) are {self.layout}, its "
                f"checkpoint's {list(saved)}; resume with the same text, data.batch_size, data.seq_len and "
                "devices, or start a new run (without ckpt_path)"
            )
        super().seek(position)


def sequential_windows(data: Tensor, seq_len: int, batch_size: int) -> list[Batch]:
    """Non-overlapping windows covering `data` exactly, batched; the remainder forms a last, shorter batch."""
    full = len(data) // seq_len
    windows = data[: full * seq_len].view(full, seq_len)
    batches = [full_batch(w) for w in windows.split(batch_size)]
    if len(data) > full * seq_len:
        batches.append(full_batch(data[full * seq_len :].unsqueeze(0)))
    return batches


@torch.no_grad()
def sample_text(
    model: Any, vocab: Vocabulary, prompt: str, length: int, temperature: float = 1.0, seed: int | None = None
) -> str:
    """`prompt` + `length` characters generated by `model` (any model of the contract), decoded."""
    prime = vocab.encode(prompt).unsqueeze(0) if prompt else None
    generator = torch.Generator(model.device).manual_seed(seed) if seed is not None else None
    was_training = model.training
    model.eval()
    ids = model.generate(length, batch_size=1, prime=prime, temperature=temperature, generator=generator)
    model.train(was_training)
    return prompt + vocab.decode(ids[0])


class CharDataModule(SequenceDataModule):
    """Character windows from a text corpus; `vocab` and `x_dim` are ready after construction."""

    step_unit = "char"
    eval_splits = ("val", "test", "heldout")
    has_streams = True
    takes_prompt = True
    values = "symbols"
    # the bound in bits per character
    figures: ClassVar[dict[str, dict[str, Any]]] = {"bpc": figure("step", 1 / math.log(2))}

    def __init__(
        self,
        path: str | None = None,
        seq_len: int = 128,
        batch_size: int = 64,
        batches_per_epoch: int = 200,
        eval_batch_size: int | None = None,
        seed: int = 0,
        stateful: bool = False,
        stateful_eval: bool = False,
        eval_streams: int = 16,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # checkpoints carry them, so eval and sample can rebuild this module
        for name, value in dict(seq_len=seq_len, batch_size=batch_size, batches_per_epoch=batches_per_epoch).items():
            if value < 1:
                raise ConfigError(f"data.{name} must be a positive integer, got {value}")
        self.seq_len, self.batch_size, self.batches_per_epoch = seq_len, batch_size, batches_per_epoch
        self.eval_batch_size = eval_batch_size or batch_size
        self.seed = seed
        text = load_corpus(path)
        self.vocab = Vocabulary(text)
        train_end, val_end = split_points(len(text))
        source = "the embedded Tiny Shakespeare" if path is None else f"data.path={path!r}"
        if train_end < seq_len or val_end == train_end or val_end == len(text):
            raise ConfigError(
                f"{source} holds {len(text)} characters, too few for a training window of data.seq_len={seq_len} "
                f"plus validation and test text; use a longer text (at least {int(seq_len / TRAIN_FRACTION) + 2} "
                "characters) or a smaller data.seq_len"
            )
        ids = self.vocab.encode(text)
        self.train_ids, self.val_ids, self.test_ids = ids[:train_end], ids[train_end:val_end], ids[val_end:]
        self.stateful, self.stateful_eval, self.eval_streams = stateful, stateful_eval, eval_streams
        self.carries_state = stateful or stateful_eval
        if stateful:  # checked here for one process; the loader checks again for the run's devices
            StreamWindows(self.train_ids, seq_len, batch_size, batches_per_epoch)

    @property
    def x_dim(self) -> int:
        return len(self.vocab)

    @property
    def metadata(self) -> dict[str, Any]:
        return {**super().metadata, "vocab": self.vocab.chars}

    def encode(self, text: str) -> Tensor:
        """A string as the (T,) ids the model reads; a character outside the vocabulary is one ConfigError."""
        return self.vocab.encode(text)

    def decode(self, ids: Tensor) -> str:
        """(T,) ids, e.g. a row of `model.generate(...)`, as text."""
        return self.vocab.decode(ids)

    @classmethod
    def write_samples(
        cls, model: Any, metadata: dict[str, Any], folder: Path, request: SampleRequest, load_data: Any
    ) -> list[Path]:
        """Prints `num_samples` samples that continue `prompt` and writes them to samples.txt; the vocabulary
        comes from the checkpoint, so the corpus need not be at hand."""
        vocab = Vocabulary(metadata["vocab"])
        texts = [
            sample_text(model, vocab, request.prompt, request.length, request.temperature, seed=request.seed + i)
            for i in range(request.num_samples)
        ]
        report = "".join(f"--- sample {i} ---\n{text}\n" for i, text in enumerate(texts))
        print(report, end="")
        path = folder / "samples.txt"
        path.write_text(report, encoding="utf-8")
        return [path]

    def train_dataloader(self) -> DataLoader:
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)
        if self.stateful:
            windows = StreamWindows(self.train_ids, self.seq_len, self.batch_size, self.batches_per_epoch, rank, world)
        else:
            windows = RandomWindows(
                self.train_ids, self.seq_len, self.batch_size, self.batches_per_epoch, self.seed, rank, world
            )
        return ResumableLoader(windows, pin_memory=self._pin_memory())

    def val_dataloader(self) -> DataLoader:
        return self._stream_loader("val") if self.stateful_eval else self._eval_loader(self.val_ids)

    def test_dataloader(self) -> DataLoader:
        return self._stream_loader("test") if self.stateful_eval else self._eval_loader(self.test_ids)

    def _stream_loader(self, split: str) -> DataLoader:
        """Validation or test as `eval_streams` streams, the state carried (`data.stateful_eval=true`)."""
        if self.trainer is not None and self.trainer.world_size > 1:
            raise ConfigError(
                "data.stateful_eval=true reads each stream in order on one process, and DDP would deal its "
                "windows out to the ranks; validate without it under DDP and use eval.stateful=true afterwards"
            )
        streams = self.streams(split, self.eval_streams, self.seq_len)
        return DataLoader(streams, batch_size=None, shuffle=False, pin_memory=self._pin_memory())

    def split_ids(self, split: str) -> Tensor:
        """A split's characters; for "heldout", the whole text after the training split (validation, then
        test): nanoGPT's validation text."""
        ids = {"val": self.val_ids, "test": self.test_ids}
        return torch.cat([self.val_ids, self.test_ids]) if split == "heldout" else ids[split]

    def eval_dataloader(self, split: str) -> DataLoader:
        """Zero-state windows of the split, whatever `stateful_eval` says (`eval` carries states itself)."""
        self.check_split(split)
        return self._eval_loader(self.split_ids(split))

    def streams(self, split: str, count: int, window: int) -> list[Batch]:
        """The split cut into `count` equal contiguous streams (the last len % count characters unread),
        read `window` characters at a time; each batch (count, <= window) continues the one before."""
        self.check_split(split)
        ids = self.split_ids(split)
        per_stream = len(ids) // count
        if per_stream < 2:
            raise ConfigError(
                f"the {split} split holds {len(ids)} characters, too few for {count} streams; use fewer streams "
                "(eval.streams, data.eval_streams)"
            )
        rows = ids[: count * per_stream].view(count, per_stream)  # (count, per_stream)
        return [full_batch(rows[:, i : i + window])._replace(first=i == 0) for i in range(0, per_stream, window)]

    def _eval_loader(self, ids: Tensor) -> DataLoader:
        batches = sequential_windows(ids, self.seq_len, self.eval_batch_size)
        return DataLoader(batches, batch_size=None, shuffle=False, pin_memory=self._pin_memory())

    def _pin_memory(self) -> bool:
        return self.trainer is not None and self.trainer.accelerator.__class__.__name__ == "CUDAAccelerator"

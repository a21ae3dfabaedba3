"""Ctrl-C and SIGTERM save the run: `last.ckpt` at the step the signal arrived in, then a clean stop."""

import signal
from pathlib import Path
from typing import Any

import lightning as L


class RunInterrupted(Exception):
    """Training stopped on a signal after saving a checkpoint; the main reports it in one line and exits with
    the shell's status for that signal (128 + its number)."""

    def __init__(self, signum: int, step: int, checkpoint: Path) -> None:
        self.signal_name, self.step, self.checkpoint = signal.Signals(signum).name, step, checkpoint
        self.exit_status = 128 + signum
        self.resume_command: str | None = None  # the main, which knows the command line, fills it in
        super().__init__(self.signal_name)

    def __str__(self) -> str:
        resume = f"; resume with: {self.resume_command}" if self.resume_command else ""
        return f"{self.signal_name} at step {self.step}: saved {self.checkpoint}{resume}"


class SaveOnInterrupt(L.Callback):
    """On SIGINT (Ctrl-C) or SIGTERM during training, finish the current step, write `<dirpath>/last.ckpt`
    through the trainer (so through the atomic checkpoint IO), and stop with `RunInterrupted`.

    Saving at a step boundary, never mid-step, is what makes the checkpoint whole: an interrupt raised inside the
    optimiser's update would leave half the weights updated. Under DDP the ranks agree on stopping (one small
    all-reduce per step), so all of them save and stop at the same step. A second Ctrl-C stops at once, unsaved.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, dirpath: str, filename: str = "last") -> None:
        self.path = Path(dirpath) / f"{filename}.ckpt"
        self.received: int | None = None
        self.previous: dict[int, Any] = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.received = None
        try:
            self.previous = {s: signal.signal(s, self._on_signal) for s in self.SIGNALS}
        except ValueError:  # not the main thread: leave the signals to Lightning
            self.previous = {}

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.received is not None and signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt  # asked twice: stop now
        self.received = signum

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        stop = self.received is not None
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if not stop:
            return
        trainer.save_checkpoint(self.path)
        raise RunInterrupted(self.received or signal.SIGTERM, trainer.global_step, self.path)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore()

    def _restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}

"""A callback for tests: the process sends itself a real signal when training reaches a given step."""

import os

import lightning as L


class SignalAtStep(L.Callback):
    def __init__(self, step: int, signum: int) -> None:
        self.step, self.signum = step, signum

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)

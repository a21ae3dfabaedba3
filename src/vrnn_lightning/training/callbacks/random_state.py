"""The global random state, saved in every checkpoint and taken up by a resumed run."""

from typing import Any

import lightning as L
import torch


class RandomState(L.Callback):
    """Lightning does not save the random state, and the posterior noise of a resumed run depends on it.

    A stateful callback: its `state_dict` rides in the checkpoint. A resumed run sets the state when training
    starts, after the sanity check (which the uninterrupted run did not do at this point), so it draws the
    noise the uninterrupted run would have drawn.
    """

    def __init__(self) -> None:
        self.to_resume: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        state = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.to_resume = state_dict

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        state, self.to_resume = self.to_resume, None
        if state is None:
            return
        torch.set_rng_state(state["cpu"])
        if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])

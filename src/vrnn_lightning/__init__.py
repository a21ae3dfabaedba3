"""vrnn-lightning: the Variational Recurrent Neural Network (Chung et al., 2015) on Lightning and Hydra.

`run = vrnn_lightning.fit("trainer.max_steps=200")` trains from Python and `model, data =
vrnn_lightning.load(run.checkpoint)` reads a checkpoint back (`api.py`); they are imported on first use, so
`import vrnn_lightning` stays light.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["fit", "load"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from vrnn_lightning import api

        return getattr(api, name)
    raise AttributeError(f"module 'vrnn_lightning' has no attribute {name!r}")

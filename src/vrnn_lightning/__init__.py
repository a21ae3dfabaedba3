"""vrnn-lightning: the Variational Recurrent Neural Network (Chung et al., 2015) on Lightning and Hydra.

`model, data = vrnn_lightning.load("<run>/checkpoints/last.ckpt")` is the notebook's entry point (`api.py`);
it is imported on first use, so `import vrnn_lightning` stays light.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["load"]


def __getattr__(name: str) -> Any:
    if name == "load":
        from vrnn_lightning.api import load

        return load
    raise AttributeError(f"module 'vrnn_lightning' has no attribute {name!r}")

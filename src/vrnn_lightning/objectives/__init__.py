"""Training objectives, one file each, behind one contract (`base.py`): the ELBO with KL warm-up and free bits,
IWAE and FIVO; the bounds they compute, as functions of the model contract, in `bounds.py`."""

from vrnn_lightning.objectives.base import Objective, Terms
from vrnn_lightning.objectives.elbo import ELBO
from vrnn_lightning.objectives.fivo import FIVO
from vrnn_lightning.objectives.iwae import IWAE

__all__ = ["ELBO", "FIVO", "IWAE", "Objective", "Terms"]

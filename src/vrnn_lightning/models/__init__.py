"""Plain PyTorch models: import only torch, never Lightning, Hydra, `data/` or `training/`; importable and
trainable with a loop of one's own. `base.py` is the contract everything above this folder uses."""

from vrnn_lightning.models.base import SequenceModel, SequenceOutput, build
from vrnn_lightning.models.distributions import DiagonalGaussian
from vrnn_lightning.models.dmm import DMM
from vrnn_lightning.models.frames import ConvFrames
from vrnn_lightning.models.likelihoods import Bernoulli, Categorical, Gaussian, GaussianMixture, Likelihood
from vrnn_lightning.models.made import MADE
from vrnn_lightning.models.rnn import RNN
from vrnn_lightning.models.srnn import SRNN
from vrnn_lightning.models.storn import STORN
from vrnn_lightning.models.vrnn import VRNN

__all__ = [
    "DMM",
    "MADE",
    "RNN",
    "SRNN",
    "STORN",
    "VRNN",
    "Bernoulli",
    "Categorical",
    "ConvFrames",
    "DiagonalGaussian",
    "Gaussian",
    "GaussianMixture",
    "Likelihood",
    "SequenceModel",
    "SequenceOutput",
    "build",
]

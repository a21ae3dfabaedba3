"""Plain PyTorch models: importable and trainable without Lightning, Hydra or the data modules."""

from vrnn_lightning.models.distributions import DiagonalGaussian
from vrnn_lightning.models.likelihoods import Bernoulli, Categorical, Gaussian, Likelihood, make_likelihood
from vrnn_lightning.models.rnn import RNN
from vrnn_lightning.models.vrnn import VRNN, VRNNOutput

__all__ = ["VRNN", "RNN", "VRNNOutput", "DiagonalGaussian", "Likelihood", "Categorical", "Bernoulli", "Gaussian", "make_likelihood"]

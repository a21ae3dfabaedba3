"""vrnn-lightning: the Variational Recurrent Neural Network (Chung et al., 2015) on Lightning and Hydra."""

__version__ = "0.1.0"

"""Pieces the sequential-VAE family shares (SRNN, DMM, STORN; the VRNN's smoothing posterior too): recurrences
run by torch's fused kernels over a whole sequence, the backward one reading each sequence from its own last
real step, the Gaussian of a z-chain whose first layer's non-z part runs for every step before the loop, and
the flat state a model carries from window to window.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vrnn_lightning.models.base import check_rnn, dropout_or_identity, mlp
from vrnn_lightning.models.distributions import DiagonalGaussian

Flat = tuple[Tensor, ...]  # a carried state: tensors with the batch first, so rows can be selected and detached


def reverse_within_lengths(x: Tensor, mask: Tensor) -> Tensor:
    """x (B, T, F) with each sequence's real steps reversed and its padding left in place: an involution, so
    the same call undoes it."""
    steps = torch.arange(x.shape[1], device=x.device)  # (T,)
    lengths = mask.sum(1, keepdim=True).long()  # (B, 1)
    order = torch.where(steps < lengths, lengths - 1 - steps, steps)  # (B, T)
    return x.gather(1, order.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class Recurrent(nn.Module):
    """A forward nn.GRU or nn.LSTM over a whole sequence (one fused call); its state flat and batch-first:
    (h,) or (h, c), each (B, H)."""

    def __init__(self, in_dim: int, h_dim: int, rnn: str) -> None:
        super().__init__()
        check_rnn(rnn)
        self.rnn = (nn.GRU if rnn == "gru" else nn.LSTM)(in_dim, h_dim, batch_first=True)
        self.parts = 1 if rnn == "gru" else 2  # how many tensors its state holds

    def forward(self, x: Tensor, state: Flat | None = None) -> tuple[Tensor, Flat]:
        """x (B, T, in) -> the outputs h_1..h_T (B, T, H) and the state after the last step."""
        if state is not None:
            layout = tuple(s.unsqueeze(0).contiguous() for s in state)  # (1, B, H) as torch takes it
            state = layout[0] if self.parts == 1 else layout
        out, last = self.rnn(x, state)
        return out, tuple(s[0] for s in ((last,) if self.parts == 1 else last))


class BackwardRNN(nn.Module):
    """b_t = RNN_backward(x_T, ..., x_t): what a smoothing posterior knows of x_{t:T}. Each sequence is read
    backwards from its own last real step, so padding never reaches a real step's b_t."""

    def __init__(self, in_dim: int, h_dim: int, rnn: str = "gru") -> None:
        super().__init__()
        check_rnn(rnn)
        self.rnn = (nn.GRU if rnn == "gru" else nn.LSTM)(in_dim, h_dim, batch_first=True)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (B, T, in), mask (B, T) -> b (B, T, H)."""
        backward, _ = self.rnn(reverse_within_lengths(x, mask))
        return reverse_within_lengths(backward, mask)


class GaussianMLP(nn.Module):
    """N(mean, diag(std^2)) of an input, both from an MLP: `trunk` (Linear+ReLU layers), then `out` to the mean
    and the raw std; std = softplus + min_std. The named distributions of the models subclass it."""

    def __init__(self, in_dim: int, hidden_dim: int, z_dim: int, layers: int, min_std: float) -> None:
        super().__init__()
        self.trunk = mlp(in_dim, hidden_dim, layers)
        self.out = nn.Linear(hidden_dim, 2 * z_dim)
        self.min_std = min_std

    def forward(self, inputs: Tensor) -> DiagonalGaussian:
        return DiagonalGaussian.from_params(self.out(self.trunk(inputs)), self.min_std)


class Emission(nn.Module):
    """A likelihood head's parameters from an MLP of its inputs, concatenated and dropped out at `dropout` in
    training (the models' p(x_t | ...) modules subclass it, naming what they read)."""

    def __init__(self, in_dim: int, hidden_dim: int, param_dim: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.dropout = dropout_or_identity(dropout)
        self.net = nn.Sequential(mlp(in_dim, hidden_dim, layers), nn.Linear(hidden_dim, param_dim))

    def forward(self, *inputs: Tensor | None) -> Tensor:
        given = [t for t in inputs if t is not None]
        return self.net(self.dropout(given[0] if len(given) == 1 else torch.cat(given, -1)))


class ChainGaussian(nn.Module):
    """N(mean, diag(std^2)) from an MLP of [z_{t-1}, c_t], for a latent chain. The first layer's c-part (and its
    bias) runs for every step before the loop (`conditions`); the loop applies the z-part and the rest
    (`step`), so the sequential work is what truly depends on z_{t-1}. std = softplus + min_std."""

    def __init__(self, z_dim: int, cond_dim: int, hidden_dim: int, out_dim: int, layers: int, min_std: float) -> None:
        super().__init__()
        self.z_dim, self.min_std = z_dim, min_std
        self.first = nn.Linear(z_dim + cond_dim, hidden_dim)
        self.rest = mlp(hidden_dim, hidden_dim, layers - 1)
        self.out = nn.Linear(hidden_dim, 2 * out_dim)

    def conditions(self, c: Tensor) -> Tensor:
        """c (B, T, C) -> the first layer's pre-activation from c_t, bias included (B, T, hidden)."""
        return F.linear(c, self.first.weight[:, self.z_dim :], self.first.bias)

    def z_weight(self) -> Tensor:
        """The first layer's weight on z_{t-1} (hidden, Z): models stack those of two chains into one matmul."""
        return self.first.weight[:, : self.z_dim]

    def finish(self, pre_activation: Tensor) -> DiagonalGaussian:
        """The Gaussian from the first layer's whole pre-activation (B, hidden)."""
        return DiagonalGaussian.from_params(self.out(self.rest(torch.relu(pre_activation))), self.min_std)

    def step(self, pre: Tensor, z_prev: Tensor) -> DiagonalGaussian:
        """One step: `pre` (B, hidden) from `conditions`, z_{t-1} (B, Z)."""
        return self.finish(torch.addmm(pre, z_prev, self.z_weight().t()))

    def forward(self, z_prev: Tensor, c: Tensor) -> DiagonalGaussian:
        """All steps at once, where z_{t-1} is known for every t (B, T, Z), (B, T, C)."""
        hidden = torch.relu(self.first(torch.cat([z_prev, c], -1)))
        return DiagonalGaussian.from_params(self.out(self.rest(hidden)), self.min_std)


def time_major(x: Tensor) -> tuple[Tensor, ...]:
    """(B, T, ...) -> T contiguous (B, ...) slices: unbinding, not indexing, in a loop, since an indexed slice's
    backward costs a full-size zero gradient per step."""
    return x.transpose(0, 1).contiguous().unbind(0)


def shifted(values: Tensor, first: Tensor | None) -> Tensor:
    """values_{t-1} at every t of values (B, T, F): `first` (B, F) at t = 1, zeros where it is None."""
    first = values.new_zeros(values.shape[0], values.shape[-1]) if first is None else first
    return torch.cat([first.unsqueeze(1), values[:, :-1]], 1)


def per_trajectory(samples: int, *tensors: Tensor) -> tuple[Tensor, ...]:
    """Each of `tensors` (B, ...) with row b repeated as rows b*K .. b*K+K-1, K = `samples`: what reads no z,
    computed once per sequence and handed to each of its K trajectories (the IW bound's), instead of being
    computed K times over K copies of the sequence."""
    return tuple(t.repeat_interleave(samples, 0) for t in tensors)


def check_samples(samples: int, state: Flat | None) -> None:
    if samples > 1 and state is not None:
        raise ValueError("samples > 1 draws K trajectories from the start of each sequence; pass no state")


def stack_gaussians(gaussians: list[DiagonalGaussian]) -> DiagonalGaussian:
    """T Gaussians over (B, Z) -> one over (B, T, Z)."""
    return DiagonalGaussian(torch.stack([g.mean for g in gaussians], 1), torch.stack([g.std for g in gaussians], 1))


def standard_normal(like: Tensor) -> DiagonalGaussian:
    return DiagonalGaussian(torch.zeros_like(like), torch.ones_like(like))

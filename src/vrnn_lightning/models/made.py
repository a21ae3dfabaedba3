"""An autoregressive head for binary vectors (piano keys): the keys of a step scored one after another, each
given the keys below it, as RNN-NADE's NADE scores a chord (Boulanger-Lewandowski et al. 2012), with MADE's
masked weights (Germain et al. 2015) so that all the conditionals of all the steps come from a few matmuls.

    p(x_t | c_t) = prod_d Bernoulli(x_td; sigmoid(l_d)),    l_d = f_d(x_t1, ..., x_t(d-1); c_t)

c_t is the decoder's output: a bias for the first hidden layer and one for the output, as RNN-NADE's RNN
gives NADE its biases. One ordering, low key to high; `hidden_dim` units per hidden layer, `layers` of them,
and a direct masked linear path from the keys below to each key's logit (MADE's "direct connections").
"""

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vrnn_lightning.models.likelihoods import Likelihood, check_width


def hidden_degrees(count: int, x_dim: int) -> Tensor:
    """MADE's degrees of a hidden layer: unit k reads keys 1..m_k, m_k cycling over 1..D-1 (so every key below
    the top one is read by some unit)."""
    return torch.arange(count) % max(x_dim - 1, 1) + 1


class MADE(Likelihood):
    """p(x_t | c_t) = prod_d p(x_td | x_t<d, c_t), key d (1-based, low to high) seeing only keys 1..d-1.

    `nll` scores every step at once (teacher forcing: the keys below are the observed ones); `sample` draws
    key by key at a temperature (its logits divided by it; 0 takes each key's more likely value, the argmax
    chain); `mean` is the chain of conditionals p(x_td = 1 | x_t<d) along the argmax chain's sample, the
    head's picture of a step (the marginals have no closed form)."""

    fits: ClassVar[tuple[str, ...]] = ("binary",)

    def __init__(self, x_dim: int, hidden_dim: int = 500, layers: int = 1, direct: bool = True) -> None:
        super().__init__()
        check_width(x_dim)
        for name, value in dict(hidden_dim=hidden_dim, layers=layers).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"model.likelihood.{name} must be a whole number >= 1, got {value!r}")
        if not isinstance(direct, bool):
            raise ValueError(f"model.likelihood.direct must be true or false, got {direct!r}")
        self.remember_config(x_dim=x_dim, hidden_dim=hidden_dim, layers=layers, direct=direct)
        self.x_dim = self.in_dim = x_dim
        self.hidden_dim = hidden_dim
        self.param_dim = hidden_dim + x_dim  # the first hidden layer's bias and the output bias, per step

        keys = torch.arange(1, x_dim + 1)  # degree of input and output key d is d
        previous = keys
        self.hidden = nn.ModuleList()
        for i in range(layers):
            degrees = hidden_degrees(hidden_dim, x_dim)
            # the first layer's bias comes from the decoder; deeper layers have their own
            self.hidden.append(nn.Linear(previous.numel(), hidden_dim, bias=i > 0))
            self.register_buffer(f"mask_{i}", (degrees[:, None] >= previous[None, :]).float(), persistent=False)
            previous = degrees
        self.out = nn.Linear(hidden_dim, x_dim, bias=False)
        self.register_buffer("mask_out", (keys[:, None] > previous[None, :]).float(), persistent=False)
        self.direct = nn.Linear(x_dim, x_dim, bias=False) if direct else None
        self.register_buffer("mask_direct", (keys[:, None] > keys[None, :]).float(), persistent=False)

    def features(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        return x.to(dtype)

    def logits(self, params: Tensor, x: Tensor) -> Tensor:
        """(..., param_dim) decoder outputs and (..., D) keys -> (..., D) logits, logit d a function of keys < d."""
        hidden_bias, out_bias = params.split([self.hidden_dim, self.x_dim], -1)
        x = x.to(params.dtype)
        h = x
        for i, layer in enumerate(self.hidden):
            h = F.linear(h, layer.weight * getattr(self, f"mask_{i}"), layer.bias)
            h = torch.relu(h + hidden_bias if i == 0 else h)
        logits = F.linear(h, self.out.weight * self.mask_out) + out_bias
        if self.direct is not None:
            logits = logits + F.linear(x, self.direct.weight * self.mask_direct)
        return logits

    def nll(self, params: Tensor, x: Tensor) -> Tensor:
        logits = self.logits(params, x)  # (B, T, D)
        return F.binary_cross_entropy_with_logits(logits, x.to(logits.dtype), reduction="none").sum(-1)

    def _chain(self, params: Tensor, temperature: float, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """Ancestral sampling key by key: (the keys (N, D), their conditionals p(x_d = 1 | x_<d) (N, D))."""
        flat = params.reshape(-1, self.param_dim)
        x = flat.new_zeros(len(flat), self.x_dim)
        probs = torch.zeros_like(x)
        for d in range(self.x_dim):  # logit d reads keys < d only, all drawn already
            logit = self.logits(flat, x)[:, d]
            probs[:, d] = torch.sigmoid(logit)
            if temperature <= 0:
                x[:, d] = (logit > 0).to(x.dtype)
            else:
                x[:, d] = torch.bernoulli(torch.sigmoid(logit / temperature), generator=generator)
        shape = (*params.shape[:-1], self.x_dim)
        return x.view(shape), probs.view(shape)

    @torch.no_grad()
    def sample(self, params: Tensor, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        return self._chain(params, temperature, generator)[0]

    @torch.no_grad()
    def mean(self, params: Tensor) -> Tensor:
        return self._chain(params, 0.0, None)[1]

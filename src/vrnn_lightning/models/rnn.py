"""The paper's baseline: the VRNN without latent variables, behind the same contract.

    decoder    p(x_t | h_{t-1}) = likelihood(decoder(h_{t-1}))
    recurrence h_t = rnn(phi_x(x_t), h_{t-1})

Its KL is zero and its bound is the exact negative log-likelihood, so `model=rnn` against `model=vrnn` is the
comparison of Chung et al. on the project's data. The recurrence is torch's fused nn.GRU / nn.LSTM.
"""

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from vrnn_lightning.models.base import (
    SequenceModel,
    SequenceOutput,
    check_common,
    dropout_or_identity,
    full_mask,
    masked,
    mlp,
    with_dropout,
)
from vrnn_lightning.models.likelihoods import Likelihood


def to_torch_layout(state: Any) -> Any:
    """Batch-first (B, H) state(s) -> nn.GRU / nn.LSTM's (1, B, H)."""
    return state.unsqueeze(0).contiguous() if isinstance(state, Tensor) else tuple(to_torch_layout(s) for s in state)


def to_batch_first(state: Any) -> Any:
    """nn.GRU / nn.LSTM's (1, B, H) state(s) -> (B, H); an LSTM's (h, c) stays a tuple."""
    return state[0] if isinstance(state, Tensor) else tuple(s[0] for s in state)


class RNN(SequenceModel):
    latent_dim = 0
    renamed: ClassVar[dict[str, str]] = {"decoder.": "emission.", "rnn.": "deterministic."}  # earlier names

    def __init__(
        self,
        likelihood: Likelihood,
        h_dim: int = 256,
        x_feat_dim: int = 256,
        hidden_dim: int = 256,
        mlp_layers: int = 2,
        rnn: str = "gru",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.remember(locals(), unless={"dropout": 0.0})  # absent at 0: earlier configs match
        self.h_dim = h_dim
        self.phi_x = with_dropout(mlp(likelihood.in_dim, x_feat_dim, mlp_layers), dropout)
        self.emission_dropout = dropout_or_identity(dropout)  # on the decoder's input h_{t-1}
        self.emission = nn.Sequential(mlp(h_dim, hidden_dim, mlp_layers), nn.Linear(hidden_dim, likelihood.param_dim))
        self.deterministic = (nn.GRU if rnn == "gru" else nn.LSTM)(x_feat_dim, h_dim, batch_first=True)

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        check_common(settings, ("h_dim", "x_feat_dim", "hidden_dim", "mlp_layers"))

    def forward(
        self, x: Tensor, mask: Tensor | None = None, noise: Tensor | None = None, state: Any = None
    ) -> SequenceOutput:
        """Teacher-forced pass; `noise` is accepted for the contract's sake and unused (nothing is sampled).
        `state` is batch-first: h (B, H), or (h, c) for an LSTM."""
        mask = full_mask(x) if mask is None else mask
        x_feats = self.phi_x(self.likelihood.features(x, self.dtype))  # (B, T, Fx)
        torch_state = None if state is None else to_torch_layout(state)  # (1, B, H) as nn.GRU / nn.LSTM take it
        hiddens, last = self.deterministic(x_feats, torch_state)  # (B, T, H): h_t
        if state is None:
            h_first = hiddens.new_zeros(hiddens.shape[0], self.h_dim)
        else:
            h_first = state if isinstance(state, Tensor) else state[0]
        h_prev = torch.cat([h_first.unsqueeze(1), hiddens[:, :-1]], 1)  # (B, T, H): h_{t-1}
        x_params = self.emission(self.emission_dropout(h_prev))
        recon = masked(self.likelihood.nll(x_params, x), mask)
        return SequenceOutput(recon, torch.zeros_like(recon), mask, x_params, state=to_batch_first(last))

    def generation_start(self, batch_size: int, prime: Tensor | None, generator: torch.Generator | None) -> Any:
        """(h, the RNN's state) after reading `prime`, or the zero state."""
        if prime is None:
            return torch.zeros(batch_size, self.h_dim, device=self.device), None
        hiddens, state = self.deterministic(self.phi_x(self.likelihood.features(prime, self.dtype)))
        return hiddens[:, -1], state

    def generation_step(self, carried: Any, temperature: float, generator: torch.Generator | None) -> Any:
        """x_t ~ p(x_t | h_{t-1}), then h_t."""
        h, state = carried
        x_t = self.likelihood.sample(self.emission(h), temperature, generator)
        hiddens, state = self.deterministic(self.phi_x(self.likelihood.features(x_t.unsqueeze(1), self.dtype)), state)
        return x_t, (hiddens[:, -1], state)

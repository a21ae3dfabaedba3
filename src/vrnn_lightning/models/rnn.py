"""The paper's baseline: the VRNN without latent variables, behind the same interface.

    decoder    p(x_t | h_{t-1}) = likelihood(decoder(h_{t-1}))
    recurrence h_t = rnn(phi_x(x_t), h_{t-1})

Its KL is zero and its bound is the exact negative log-likelihood, so `model=rnn` against `model=vrnn` is the
comparison of Chung et al. on the project's data. The recurrence is torch's fused nn.GRU / nn.LSTM.
"""

import torch
from torch import Tensor, nn

from vrnn_lightning.models.likelihoods import make_likelihood
from vrnn_lightning.models.vrnn import VRNNOutput, check_sizes, mlp


class RNN(nn.Module):
    def __init__(
        self,
        x_dim: int,
        likelihood: str = "categorical",
        h_dim: int = 256,
        x_feat_dim: int = 256,
        hidden_dim: int = 256,
        mlp_layers: int = 2,
        rnn: str = "gru",
        output_std: float | None = None,
    ) -> None:
        super().__init__()
        sizes = dict(x_dim=x_dim, h_dim=h_dim, x_feat_dim=x_feat_dim, hidden_dim=hidden_dim, mlp_layers=mlp_layers)
        check_sizes(sizes, rnn)
        self.config = dict(sizes, likelihood=likelihood, rnn=rnn, output_std=output_std)
        self.h_dim = h_dim
        self.likelihood = make_likelihood(likelihood, x_dim, output_std)
        self.phi_x = mlp(self.likelihood.in_dim, x_feat_dim, mlp_layers)
        self.decoder = nn.Sequential(mlp(h_dim, hidden_dim, mlp_layers), nn.Linear(hidden_dim, self.likelihood.param_dim))
        self.rnn = (nn.GRU if rnn == "gru" else nn.LSTM)(x_feat_dim, h_dim, batch_first=True)

    @property
    def dtype(self) -> torch.dtype:
        return self.decoder[1].weight.dtype

    def forward(self, x: Tensor, noise: Tensor | None = None) -> VRNNOutput:
        """Teacher-forced pass; `noise` is accepted for interface parity and unused (nothing is sampled)."""
        x_feats = self.phi_x(self.likelihood.features(x, self.dtype))
        hiddens, _ = self.rnn(x_feats)
        h_prev = torch.cat([hiddens.new_zeros(hiddens.shape[0], 1, self.h_dim), hiddens[:, :-1]], 1)
        x_params = self.decoder(h_prev)
        recon = self.likelihood.nll(x_params, x)
        return VRNNOutput(recon, torch.zeros_like(recon), x_params)

    @torch.no_grad()
    def generate(
        self,
        length: int,
        batch_size: int = 1,
        prime: Tensor | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Sample `length` steps after reading `prime` (B, P, ...), which is not repeated in the output."""
        device = self.decoder[1].weight.device
        state = None
        h = torch.zeros(batch_size if prime is None else prime.shape[0], self.h_dim, device=device)
        if prime is not None:
            hiddens, state = self.rnn(self.phi_x(self.likelihood.features(prime.to(device), self.dtype)))
            h = hiddens[:, -1]
        samples = []
        for _ in range(length):
            x_t = self.likelihood.sample(self.decoder(h), temperature, generator)
            samples.append(x_t)
            hiddens, state = self.rnn(self.phi_x(self.likelihood.features(x_t.unsqueeze(1), self.dtype)), state)
            h = hiddens[:, -1]
        return torch.stack(samples, 1)

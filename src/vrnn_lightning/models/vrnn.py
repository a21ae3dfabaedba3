"""The Variational Recurrent Neural Network of Chung et al. (2015), arXiv:1506.02216.

At each step t, with h_{t-1} the recurrent state:
    prior     p(z_t | h_{t-1})             = N(prior(h_{t-1}))
    encoder   q(z_t | x_t, h_{t-1})        = N(encoder(phi_x(x_t), h_{t-1}))
    decoder   p(x_t | z_t, h_{t-1})        = likelihood(decoder(phi_z(z_t), h_{t-1}))
    recurrence h_t = rnn(phi_x(x_t), phi_z(z_t), h_{t-1})
The per-step negative ELBO is  -log p(x_t | z_t, h_{t-1}) + KL(q || p).

Only the encoder -> z_t -> phi_z -> recurrence path is sequential; phi_x and the x-parts of the encoder and
the recurrence run for every step before the loop, and the prior, decoder and loss run after it on the
stacked states.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vrnn_lightning.models.distributions import DiagonalGaussian
from vrnn_lightning.models.likelihoods import make_likelihood

State = Tensor | tuple[Tensor, Tensor]
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's


@dataclass
class VRNNOutput:
    """Per-step terms, all (B, T) in nats; the decoder's output (B, T, param_dim) for reconstructions; the two
    Gaussians and the sampled z, each (B, T, z_dim), for latent diagnostics (None for a model without latents)."""

    recon: Tensor
    kl: Tensor
    x_params: Tensor
    posterior: DiagonalGaussian | None = None
    prior: DiagonalGaussian | None = None
    z: Tensor | None = None

    def log_weight(self) -> Tensor:
        """log p(x, z) - log q(z | x) of each sequence (B,) at the sampled trajectory z: an importance weight.

        Its expectation under q is the ELBO; log-mean-exp over K trajectories is the IW bound.
        """
        if self.z is None:
            return -self.recon.sum(1)
        return (-self.recon + self.prior.log_prob(self.z) - self.posterior.log_prob(self.z)).sum(1)


def gru_update(gates_x: Tensor, gates_h: Tensor, h: Tensor) -> Tensor:
    """nn.GRUCell's update from its two pre-activations (input part, hidden part), each (B, 3H) as r, z, n."""
    hidden = h.shape[-1]
    x_rz, x_n = gates_x.split([2 * hidden, hidden], -1)
    h_rz, h_n = gates_h.split([2 * hidden, hidden], -1)
    reset, update = torch.sigmoid(x_rz + h_rz).chunk(2, -1)
    return torch.lerp(torch.tanh(torch.addcmul(x_n, reset, h_n)), h, update)


def lstm_update(gates: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """nn.LSTMCell's update from its summed pre-activation (B, 4H) ordered i, f, g, o."""
    in_gate, forget_gate, cell_gate, out_gate = gates.chunk(4, -1)
    c = torch.sigmoid(forget_gate) * state[1] + torch.sigmoid(in_gate) * torch.tanh(cell_gate)
    return torch.sigmoid(out_gate) * torch.tanh(c), c


def time_major(x: Tensor) -> tuple[Tensor, ...]:
    """(B, T, ...) -> T contiguous (B, ...) slices."""
    return x.transpose(0, 1).contiguous().unbind(0)


def loop_linears(layers: list[nn.Module], steps: int, batch: int) -> list[tuple[Tensor, tuple[Tensor, ...], bool]]:
    """(W^T, the bias broadcast to every step, ReLU follows) for each Linear of a Linear/ReLU stack.

    Inside the loop each layer is then one addmm, and its bias gradient needs no reduction per step: the
    broadcast is undone once, after the loop, by the backward of the expand.
    """
    return [
        (m.weight.t(), per_step(m.bias, steps, batch), i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU))
        for i, m in enumerate(layers) if isinstance(m, nn.Linear)
    ]


def per_step(bias: Tensor, steps: int, batch: int) -> tuple[Tensor, ...]:
    return bias.expand(steps, batch, -1).contiguous().unbind(0)


def at_step(layers: list[tuple[Tensor, tuple[Tensor, ...], bool]], t: int) -> list[tuple[Tensor, Tensor, bool]]:
    """The layers of `loop_linears` with step t's bias slice."""
    return [(weight_t, bias[t], relu) for weight_t, bias, relu in layers]


def apply_linears(x: Tensor, layers: list[tuple[Tensor, Tensor, bool]]) -> Tensor:
    for weight_t, bias, relu in layers:
        x = torch.addmm(bias, x, weight_t)
        x = torch.relu(x) if relu else x
    return x


def sequential_step(
    state: State, enc_x: Tensor, gates_x: Tensor, noise: Tensor, h_bias: Tensor, w_h: Tensor, h_split: list[int],
    enc_rest: list[tuple[Tensor, Tensor, bool]], phi_z: list[tuple[Tensor, Tensor, bool]], w_gates_z: Tensor,
    min_std: float,
) -> tuple[Tensor, Tensor, Tensor, State]:
    """The only truly sequential work of a training step: encoder (h-part) -> z_t -> phi_z -> recurrence.

    A pure function of tensors, so `torch.compile` can fuse one step's element-wise work into a few kernels
    (`VRNN(compile=...)`), instead of unrolling the whole time loop into one graph. Returns the posterior's
    mean and std, phi_z(z_t) and the next state.
    """
    h = VRNN.hidden(state)
    enc_h, gates_h = torch.addmm(h_bias, h, w_h).split(h_split, -1)
    enc = torch.relu(enc_x + enc_h)
    mean, raw_std = apply_linears(enc, enc_rest).chunk(2, -1)
    std = F.softplus(raw_std) + min_std
    z_feat = apply_linears(torch.addcmul(mean, std, noise), phi_z)
    gates = torch.addmm(gates_x, z_feat, w_gates_z)
    state = gru_update(gates, gates_h, h) if isinstance(state, Tensor) else lstm_update(gates + gates_h, state)
    return mean, std, z_feat, state


def check_sizes(sizes: dict[str, int], rnn: str) -> None:
    """One-line errors, at construction, for sizes that are not positive integers and unknown recurrences."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"model.{name} must be a positive integer, got {value!r}")
    if rnn not in ("gru", "lstm"):
        raise ValueError(f"model.rnn must be 'gru' or 'lstm', got {rnn!r}")


def mlp(in_dim: int, width: int, layers: int) -> nn.Sequential:
    """`layers` x (Linear, ReLU): the feature extractors and the trunks of the prior, encoder and decoder."""
    modules: list[nn.Module] = []
    for i in range(layers):
        modules += [nn.Linear(in_dim if i == 0 else width, width), nn.ReLU()]
    return nn.Sequential(*modules)


class VRNN(nn.Module):
    """A VRNN over sequences x of shape (B, T, ...); the likelihood head fixes what x_t is."""

    def __init__(
        self,
        x_dim: int,
        likelihood: str = "categorical",
        h_dim: int = 256,
        z_dim: int = 32,
        x_feat_dim: int = 256,
        z_feat_dim: int = 256,
        hidden_dim: int = 256,
        mlp_layers: int = 2,
        rnn: str = "gru",
        min_std: float = 1e-4,
        output_std: float | None = None,
        compile: bool | str = False,
    ) -> None:
        super().__init__()
        sizes = dict(x_dim=x_dim, h_dim=h_dim, z_dim=z_dim, x_feat_dim=x_feat_dim, z_feat_dim=z_feat_dim,
                     hidden_dim=hidden_dim, mlp_layers=mlp_layers)
        check_sizes(sizes, rnn)
        if not min_std > 0:
            raise ValueError(f"model.min_std must be > 0 so no std reaches zero, got {min_std!r}")
        if not (isinstance(compile, bool) or compile in COMPILE_MODES):
            raise ValueError(f"model.compile must be true, false or one of {', '.join(COMPILE_MODES)}, got {compile!r}")
        self.config = dict(sizes, likelihood=likelihood, rnn=rnn, min_std=min_std, output_std=output_std, compile=compile)
        self.h_dim, self.z_dim, self.min_std = h_dim, z_dim, min_std
        # torch.compile's default mode for `true`; "reduce-overhead" adds CUDA graphs on a GPU.
        self.loop_step = sequential_step if compile is False else torch.compile(
            sequential_step, mode=None if compile is True else compile, dynamic=False)

        self.likelihood = make_likelihood(likelihood, x_dim, output_std)
        self.phi_x = mlp(self.likelihood.in_dim, x_feat_dim, mlp_layers)
        self.phi_z = mlp(z_dim, z_feat_dim, mlp_layers)
        self.prior = nn.Sequential(mlp(h_dim, hidden_dim, mlp_layers), nn.Linear(hidden_dim, 2 * z_dim))
        self.encoder = nn.Sequential(mlp(x_feat_dim + h_dim, hidden_dim, mlp_layers), nn.Linear(hidden_dim, 2 * z_dim))
        self.decoder = nn.Sequential(
            mlp(z_feat_dim + h_dim, hidden_dim, mlp_layers), nn.Linear(hidden_dim, self.likelihood.param_dim)
        )
        cell = nn.GRUCell if rnn == "gru" else nn.LSTMCell
        self.cell = cell(x_feat_dim + z_feat_dim, h_dim)

    @property
    def dtype(self) -> torch.dtype:
        return self.cell.weight_hh.dtype

    def initial_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        h = torch.zeros(batch_size, self.h_dim, device=device, dtype=dtype)
        return h if isinstance(self.cell, nn.GRUCell) else (h, torch.zeros_like(h))

    @staticmethod
    def hidden(state: State) -> Tensor:
        """h_{t-1}, the part of the state the prior, encoder and decoder read."""
        return state if isinstance(state, Tensor) else state[0]

    def posterior_step(self, x_feat: Tensor, state: State, noise: Tensor) -> tuple[Tensor, Tensor, State]:
        """One sequential step: encoder -> z_t -> phi_z -> recurrence. Returns (q params, phi_z(z_t), next state)."""
        q_params = self.encoder(torch.cat([x_feat, self.hidden(state)], -1))
        z = DiagonalGaussian.from_params(q_params, self.min_std).rsample(noise)
        z_feat = self.phi_z(z)
        return q_params, z_feat, self.cell(torch.cat([x_feat, z_feat], -1), state)

    def forward(self, x: Tensor, noise: Tensor | None = None) -> VRNNOutput:
        """Teacher-forced pass over x (B, T, ...); `noise` (B, T, z_dim) fixes the reparameterisation draws.

        Time-parallel: the x-parts of the encoder's first layer and of the recurrence's input are computed for
        all steps before the loop; the loop holds only what depends on h_{t-1}, each layer one addmm on
        weights transposed beforehand. `reference.per_step_forward` is the plain formulation it must match.
        """
        x_feats = self.phi_x(self.likelihood.features(x, self.dtype))
        batch, steps = x_feats.shape[:2]
        if noise is None:
            noise = torch.randn(batch, steps, self.z_dim, device=x_feats.device, dtype=x_feats.dtype)
        x_width = x_feats.shape[-1]
        encoder_layers = [*self.encoder[0], self.encoder[1]]
        enc_first, enc_rest = encoder_layers[0], loop_linears(encoder_layers[2:], steps, batch)
        phi_z = loop_linears(list(self.phi_z), steps, batch)
        cell = self.cell
        # Time-major and contiguous, then unbind: indexing in the loop would cost a full-size zero gradient per step.
        enc_x = time_major(F.linear(x_feats, enc_first.weight[:, :x_width], enc_first.bias))
        gates_x = time_major(F.linear(x_feats, cell.weight_ih[:, :x_width], cell.bias_ih))
        noise_t = time_major(noise)
        # h_{t-1} feeds the encoder and the recurrence through one matmul.
        w_gates_z = cell.weight_ih[:, x_width:].t()
        w_h = torch.cat([enc_first.weight[:, x_width:], cell.weight_hh]).t()
        b_h = per_step(torch.cat([torch.zeros_like(enc_first.bias), cell.bias_hh]), steps, batch)
        h_split = [enc_first.out_features, cell.weight_hh.shape[0]]

        state = self.initial_state(batch, x_feats.device, x_feats.dtype)
        hiddens, means, stds, z_feats = [], [], [], []
        for t in range(steps):
            hiddens.append(self.hidden(state))
            mean, std, z_feat, state = self.loop_step(
                state, enc_x[t], gates_x[t], noise_t[t], b_h[t], w_h, h_split, at_step(enc_rest, t), at_step(phi_z, t),
                w_gates_z, self.min_std,
            )
            means.append(mean)
            stds.append(std)
            z_feats.append(z_feat)
        h_prev = torch.stack(hiddens, 1)
        posterior = DiagonalGaussian(torch.stack(means, 1), torch.stack(stds, 1))
        prior = DiagonalGaussian.from_params(self.prior(h_prev), self.min_std)
        x_params = self.decoder(torch.cat([torch.stack(z_feats, 1), h_prev], -1))
        z = torch.addcmul(posterior.mean, posterior.std, noise)  # the draws the loop made, batched
        return VRNNOutput(self.likelihood.nll(x_params, x), posterior.kl(prior), x_params, posterior, prior, z)

    @torch.no_grad()
    def generate(
        self,
        length: int,
        batch_size: int = 1,
        prime: Tensor | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Sample `length` steps: prior -> z_t -> decoder -> x_t -> recurrence.

        `prime` (B, P, ...) is read first through the encoder, as in training, so the samples continue it;
        it is not repeated in the output. `temperature` scales the decoder's distribution.
        """
        device = next(self.parameters()).device
        if prime is not None:
            batch_size = prime.shape[0]
        state = self.initial_state(batch_size, device)
        if prime is not None:
            x_feats = self.phi_x(self.likelihood.features(prime.to(device), self.dtype))
            for t in range(x_feats.shape[1]):
                noise = torch.randn(batch_size, self.z_dim, device=device, generator=generator)
                _, _, state = self.posterior_step(x_feats[:, t], state, noise)
        samples = []
        for _ in range(length):
            h = self.hidden(state)
            noise = torch.randn(batch_size, self.z_dim, device=device, generator=generator)
            z = DiagonalGaussian.from_params(self.prior(h), self.min_std).rsample(noise)
            z_feat = self.phi_z(z)
            x_t = self.likelihood.sample(self.decoder(torch.cat([z_feat, h], -1)), temperature, generator)
            samples.append(x_t)
            x_feat = self.phi_x(self.likelihood.features(x_t.unsqueeze(1), self.dtype)).squeeze(1)
            state = self.cell(torch.cat([x_feat, z_feat], -1), state)
        return torch.stack(samples, 1)

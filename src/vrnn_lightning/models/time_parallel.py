"""The VRNN's teacher-forced pass, time-parallel: the same maths as `VRNN.step` at every t, fewer kernels.

Only encoder (h-part) -> z_t -> phi_z -> recurrence is truly sequential. phi_x and the x-parts of the encoder's
first layer and of the recurrence's input gates run for every step before the loop; the prior, the decoder and
the loss run after it, on the stacked states. Inside the loop each layer is one addmm on a weight transposed
once per forward (`FusedLayer`), h_{t-1} feeds the encoder and the recurrence through one matmul, and every
bias is broadcast to every step beforehand, so no bias gradient is reduced inside the loop (the broadcast is
undone once, after it, by the backward of the expand). `reference.per_step_forward` is the formulation this
must match (tests: losses and gradients to 1e-5 in float64, GRU and LSTM, eager and compiled).

The loop knows the MLPs as Linear/ReLU stacks; `check_fusable` refuses, at construction, any other layer.
"""

from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vrnn_lightning.models.base import SequenceOutput, full_mask, masked
from vrnn_lightning.models.blocks import check_samples, per_trajectory, time_major
from vrnn_lightning.models.distributions import DiagonalGaussian

if TYPE_CHECKING:
    from vrnn_lightning.models.vrnn import VRNN

State = Tensor | tuple[Tensor, Tensor]  # h, or (h, c) for an LSTM
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's


class FusedLayer(NamedTuple):
    """One Linear (+ ReLU) of the loop: the weight transposed, the bias of one step (B, out)."""

    weight_t: Tensor  # (in, out)
    bias: Tensor  # (B, out)
    relu: bool


class LoopStep(NamedTuple):
    """Everything step t of the loop reads besides the state; a tuple of tensors, so `torch.compile` takes it."""

    enc_x: Tensor  # (B, E) x-part of the encoder's first layer, its bias included
    gates_x: Tensor  # (B, G) x-part of the recurrence's input gates, its bias included
    noise: Tensor  # (B, Z) the reparameterisation draw of z_t
    h_weight_t: Tensor  # (H, E + G) h_{t-1} -> [encoder's first layer, recurrence's hidden gates]
    h_bias: Tensor  # (B, E + G) zeros for the encoder part, the recurrence's hidden bias
    h_split: tuple[int, int]  # (E, G)
    encoder_rest: tuple[FusedLayer, ...]  # the encoder's layers after its first, its output layer last
    phi_z: tuple[FusedLayer, ...]
    z_gates_weight_t: Tensor  # (Fz, G) phi_z(z_t) -> the recurrence's input gates
    min_std: float


class PerStep(NamedTuple):
    """A tensor (or a layer's bias) broadcast to every step: T contiguous (B, ...) slices."""

    slices: tuple[Tensor, ...]

    @classmethod
    def broadcast(cls, bias: Tensor, steps: int, batch: int) -> "PerStep":
        return cls(bias.expand(steps, batch, -1).contiguous().unbind(0))

    @classmethod
    def time_major(cls, x: Tensor) -> "PerStep":
        """(B, T, ...) -> T contiguous (B, ...) slices (`blocks.time_major`)."""
        return cls(time_major(x))


def gru_update(gates_x: Tensor, gates_h: Tensor, h: Tensor) -> Tensor:
    """nn.GRUCell's update from its two pre-activations (input part, hidden part), each (B, 3H) as r, z, n."""
    hidden = h.shape[-1]
    x_rz, x_n = gates_x.split([2 * hidden, hidden], -1)
    h_rz, h_n = gates_h.split([2 * hidden, hidden], -1)
    reset, update = torch.sigmoid(x_rz + h_rz).chunk(2, -1)
    candidate = torch.tanh(torch.addcmul(x_n, reset, h_n))
    # Under autocast the gates come out in bf16 while the state stays float32; lerp does not promote
    return torch.lerp(candidate.to(h.dtype), h, update.to(h.dtype))


def lstm_update(gates: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """nn.LSTMCell's update from its summed pre-activation (B, 4H) ordered i, f, g, o."""
    in_gate, forget_gate, cell_gate, out_gate = gates.chunk(4, -1)
    c = torch.sigmoid(forget_gate) * state[1] + torch.sigmoid(in_gate) * torch.tanh(cell_gate)
    return torch.sigmoid(out_gate) * torch.tanh(c), c


def apply_layers(x: Tensor, layers: tuple[FusedLayer, ...]) -> Tensor:
    for layer in layers:
        x = torch.addmm(layer.bias, x, layer.weight_t)
        x = torch.relu(x) if layer.relu else x
    return x


def loop_step(state: State, step: LoopStep) -> tuple[Tensor, Tensor, Tensor, State]:
    """The only truly sequential work: encoder (h-part) -> z_t -> phi_z -> recurrence.

    A pure function of tensors, so `torch.compile` fuses one step's element-wise work into a few kernels
    (`VRNN(compile=...)`) instead of unrolling the whole loop into one graph. Returns the posterior's mean and
    std, phi_z(z_t) and the next state.
    """
    h = state if isinstance(state, Tensor) else state[0]
    enc_h, gates_h = torch.addmm(step.h_bias, h, step.h_weight_t).split(step.h_split, -1)
    enc = torch.relu(step.enc_x + enc_h)
    mean, raw_std = apply_layers(enc, step.encoder_rest).chunk(2, -1)
    std = F.softplus(raw_std) + step.min_std
    z_feat = apply_layers(torch.addcmul(mean, std, step.noise), step.phi_z)
    gates = torch.addmm(step.gates_x, z_feat, step.z_gates_weight_t)
    state = gru_update(gates, gates_h, h) if isinstance(state, Tensor) else lstm_update(gates + gates_h, state)
    return mean, std, z_feat, state


def linear_layers(stack: nn.Sequential) -> list[tuple[nn.Linear, bool]]:
    """(Linear, a ReLU follows) for a Linear/ReLU stack."""
    modules = list(stack)
    return [
        (m, i + 1 < len(modules) and isinstance(modules[i + 1], nn.ReLU))
        for i, m in enumerate(modules)
        if isinstance(m, nn.Linear)
    ]


def check_fusable(model: "VRNN") -> None:
    """Refuse, in one line, an in-loop MLP the loop would misread: the encoder's trunk and phi_z must be
    Linear layers each followed by a ReLU, and nothing else (phi_x, the prior and the decoder run outside the
    loop as ordinary modules)."""
    for name in ("posterior.trunk", "phi_z"):
        stack = model.get_submodule(name)
        kinds = [type(m) for m in stack]
        if kinds != [nn.Linear, nn.ReLU] * (len(kinds) // 2) or not kinds:
            raise ValueError(
                f"model.{name} holds {', '.join(k.__name__ for k in kinds) or 'nothing'}; the "
                "time-parallel loop fuses only Linear+ReLU pairs: teach models/time_parallel.py the new layer"
            )


def time_parallel_forward(
    model: "VRNN",
    x: Tensor,
    mask: Tensor | None,
    noise: Tensor | None,
    state: State | None = None,
    future: Tensor | None = None,
    samples: int = 1,
) -> SequenceOutput:
    """`model(x, mask, noise, state, future, samples)`: the teacher-forced pass over x (B, T, ...), see the
    module's docstring."""
    check_samples(samples, state)
    x_feats = model.phi_x(model.likelihood.features(x, model.dtype))  # (B, T, Fx)
    x_width = x_feats.shape[-1]
    mask = full_mask(x) if mask is None else mask
    # What the encoder reads besides h_{t-1}: phi_x(x_t), and for a smoothing posterior b_t over x_{t:T}
    if model.summary is not None and future is None:
        future = model.summary(x_feats, mask)  # (B, T, H): b_t
    observed = x_feats if future is None else torch.cat([x_feats, future], -1)
    observed_width = observed.shape[-1]
    encoder, cell = model.posterior, model.deterministic.cell
    enc_first, *_ = encoder.trunk
    enc_x = F.linear(observed, enc_first.weight[:, :observed_width], enc_first.bias)  # (B, T, E)
    gates_x = F.linear(x_feats, cell.weight_ih[:, :x_width], cell.bias_ih)  # (B, T, G)
    if samples > 1:  # the K trajectories of a sequence share everything above; the loop runs on B*K rows
        x, mask, enc_x, gates_x = per_trajectory(samples, x, mask, enc_x, gates_x)
        future = None if future is None else per_trajectory(samples, future)[0]
    batch, steps = x.shape[:2]
    if noise is None:
        noise = torch.randn(batch, steps, model.latent_dim, device=x_feats.device, dtype=x_feats.dtype)
    encoder_rest = [*linear_layers(encoder.trunk)[1:], (encoder.out, False)]
    phi_z = linear_layers(model.phi_z)

    def loop_layers(layers: list[tuple[nn.Linear, bool]]) -> list[tuple[Tensor, PerStep, bool]]:
        return [(m.weight.t(), PerStep.broadcast(m.bias, steps, batch), relu) for m, relu in layers]

    encoder_rest, phi_z = loop_layers(encoder_rest), loop_layers(phi_z)
    enc_x, gates_x = PerStep.time_major(enc_x), PerStep.time_major(gates_x)  # T x (B, E), T x (B, G)
    noise_t = PerStep.time_major(noise)  # T x (B, Z)
    h_weight_t = torch.cat([enc_first.weight[:, observed_width:], cell.weight_hh]).t()  # (H, E + G)
    h_bias = PerStep.broadcast(torch.cat([torch.zeros_like(enc_first.bias), cell.bias_hh]), steps, batch)
    h_split = (enc_first.out_features, cell.weight_hh.shape[0])
    z_gates_weight_t = cell.weight_ih[:, x_width:].t()  # (Fz, G)
    step_fn = compiled_loop_step(model.compile_mode)

    state = model.initial_state(batch) if state is None else state
    hiddens, means, stds, z_feats = [], [], [], []
    for t in range(steps):
        hiddens.append(model.deterministic.hidden(state))
        step = LoopStep(
            enc_x.slices[t],
            gates_x.slices[t],
            noise_t.slices[t],
            h_weight_t,
            h_bias.slices[t],
            h_split,
            tuple(FusedLayer(w, b.slices[t], relu) for w, b, relu in encoder_rest),
            tuple(FusedLayer(w, b.slices[t], relu) for w, b, relu in phi_z),
            z_gates_weight_t,
            encoder.min_std,
        )
        mean, std, z_feat, state = step_fn(state, step)
        if model.compile_mode == "reduce-overhead":
            # A CUDA graph's outputs live in memory its next replay overwrites: keep copies
            mean, std, z_feat = mean.clone(), std.clone(), z_feat.clone()
            state = state.clone() if isinstance(state, Tensor) else tuple(s.clone() for s in state)
        means.append(mean)
        stds.append(std)
        z_feats.append(z_feat)
    h_prev = torch.stack(hiddens, 1)  # (B, T, H): h_{t-1} at every t
    posterior = DiagonalGaussian(torch.stack(means, 1), torch.stack(stds, 1))  # (B, T, Z)
    prior = model.prior(h_prev)
    x_params = model.emission(torch.stack(z_feats, 1), h_prev)  # (B, T, param_dim)
    z = torch.addcmul(posterior.mean, posterior.std, noise)  # the draws the loop made, batched
    recon = masked(model.likelihood.nll(x_params, x), mask)
    kl = masked(posterior.kl(prior), mask)
    auxiliary = None if model.future_predictor is None else masked(model.future_predictor(z, future), mask)
    return SequenceOutput(recon, kl, mask, x_params, posterior, prior, z, state, auxiliary)


_COMPILED: dict[str, object] = {}


def compiled_loop_step(mode: bool | str):
    """`loop_step`, or its `torch.compile`d form (once per mode per process; `true` is torch.compile's default
    mode, "reduce-overhead" adds CUDA graphs on a GPU)."""
    if mode is False:
        return loop_step
    key = "default" if mode is True else mode
    if key not in _COMPILED:
        _COMPILED[key] = torch.compile(loop_step, mode=None if mode is True else mode, dynamic=False)
    return _COMPILED[key]

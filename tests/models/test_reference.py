"""The time-parallel forward must equal the plain per-step formulation: same loss, same gradients."""

import pytest
import torch

from vrnn_lightning.models import VRNN, Categorical
from vrnn_lightning.models.reference import per_step_forward


@pytest.mark.parametrize(
    "rnn, mlp_layers, posterior, compile",
    [
        ("gru", 2, "filtering", False),
        ("lstm", 1, "filtering", False),
        ("gru", 3, "filtering", False),
        ("gru", 2, "smoothing", False),
        ("lstm", 2, "smoothing", False),
        pytest.param("gru", 2, "filtering", True, marks=pytest.mark.slow),  # compiling takes seconds
        pytest.param("lstm", 2, "smoothing", True, marks=pytest.mark.slow),
    ],
)
def test_time_parallel_forward_matches_per_step_reference(rnn, mlp_layers, posterior, compile):
    torch.manual_seed(0)
    model = VRNN(
        Categorical(9),
        h_dim=12,
        z_dim=3,
        x_feat_dim=7,
        z_feat_dim=5,
        hidden_dim=10,
        mlp_layers=mlp_layers,
        rnn=rnn,
        posterior=posterior,
        compile=compile,
    ).double()
    x = torch.randint(0, 9, (4, 11))
    noise = torch.randn(4, 11, 3, dtype=torch.float64)
    mask = (torch.arange(11) < torch.tensor([[11], [7], [3], [10]])).double()  # right-padded pieces

    results = []
    for forward in (lambda: model(x, mask, noise), lambda: per_step_forward(model, x, noise, mask)):
        model.zero_grad()
        out = forward()
        (out.recon + out.kl).sum().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        results.append((out, grads))
    (fast, fast_grads), (ref, ref_grads) = results

    assert torch.allclose(fast.recon, ref.recon, atol=1e-5, rtol=0)
    assert torch.allclose(fast.kl, ref.kl, atol=1e-5, rtol=0)
    assert torch.allclose(fast.posterior.mean, ref.posterior.mean, atol=1e-5, rtol=0)
    for name in ref_grads:
        assert torch.allclose(fast_grads[name], ref_grads[name], atol=1e-5, rtol=0), name

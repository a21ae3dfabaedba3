import torch

from vrnn_lightning.latents import LatentUsage
from vrnn_lightning.models import DiagonalGaussian, VRNNOutput


def output(posterior_mean: torch.Tensor) -> VRNNOutput:
    b, t, z = posterior_mean.shape
    ones = torch.ones(b, t, z)
    return VRNNOutput(
        recon=torch.zeros(b, t), kl=torch.zeros(b, t), x_params=torch.zeros(b, t, 1),
        posterior=DiagonalGaussian(posterior_mean, ones), prior=DiagonalGaussian(torch.zeros(b, t, z), ones),
    )


def test_active_units_count_dimensions_whose_posterior_mean_varies_over_the_data():
    torch.manual_seed(0)
    means = torch.zeros(50, 4, 3)
    means[..., 0] = torch.randn(50, 4)  # varies: active
    means[..., 1] = 5.0  # constant: inactive however large
    means[..., 2] = 0.05 * torch.randn(50, 4)  # variance 0.0025 < 0.01: inactive
    usage = LatentUsage()
    usage.update(output(means[:20]))
    usage.update(output(means[20:]))
    assert usage.count == 200 and usage.active_units() == 1
    assert torch.allclose(usage.mean_variance(), means.flatten(0, 1).double().var(0, unbiased=False), atol=1e-9)
    assert torch.allclose(usage.kl_per_dim(), 0.5 * means.flatten(0, 1).double().pow(2).mean(0), atol=1e-6)


def test_models_without_latents_leave_usage_empty():
    usage = LatentUsage()
    usage.update(VRNNOutput(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3, 1)))
    assert usage.count == 0

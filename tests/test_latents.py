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


def test_usage_summed_across_ranks_equals_usage_over_the_whole_split():
    torch.manual_seed(1)
    means = torch.randn(30, 4, 3) * torch.tensor([1.0, 0.01, 0.3])
    whole = LatentUsage()
    whole.update(output(means))
    ranks = [LatentUsage(), LatentUsage(), LatentUsage()]  # the third saw no batch
    ranks[0].update(output(means[:10]))
    ranks[1].update(output(means[10:]))
    stats = [torch.cat([torch.tensor([float(r.count)], dtype=torch.float64), r.kl_sum, r.mean_sum, r.square_sum])
             if r.count else torch.zeros(10, dtype=torch.float64) for r in ranks]
    total = sum(stats)  # what an all-reduce with op=sum hands every rank
    def all_reduce(sent: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
        assert torch.equal(sent, expected)  # each rank sends its own count and sums
        return total.clone()

    for rank, own in zip(ranks, stats):
        rank.sum_across(lambda t: all_reduce(t, own), z_dim=3, device=torch.device("cpu"))
        assert rank.count == whole.count and rank.active_units() == whole.active_units() == 2
        assert torch.allclose(rank.mean_variance(), whole.mean_variance()) and torch.allclose(rank.kl_per_dim(), whole.kl_per_dim())

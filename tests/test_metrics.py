import torch

from vrnn_lightning.models import DiagonalGaussian, SequenceOutput
from vrnn_lightning.training.metrics import LatentUsage


def output(
    posterior_mean: torch.Tensor, mask: torch.Tensor | None = None, prior_mean: torch.Tensor | None = None
) -> SequenceOutput:
    b, t, z = posterior_mean.shape
    ones = torch.ones(b, t, z)
    return SequenceOutput(
        recon=torch.zeros(b, t),
        kl=torch.zeros(b, t),
        mask=torch.ones(b, t) if mask is None else mask,
        x_params=torch.zeros(b, t, 1),
        posterior=DiagonalGaussian(posterior_mean, ones),
        prior=DiagonalGaussian(torch.zeros(b, t, z) if prior_mean is None else prior_mean, ones),
    )


def test_a_posterior_that_follows_a_moving_prior_is_active_but_not_off_the_prior():
    """With a prior that moves with the past (SRNN, DMM, VRNN), a collapsed posterior (q = p) still has a mean
    that varies over the data: Burda's count calls it active, the count off the prior does not."""
    torch.manual_seed(0)
    prior = torch.randn(30, 5, 3)  # the prior's mean moves from step to step
    posterior = prior.clone()
    posterior[..., 0] += torch.randn(30, 5)  # dimension 0 reads the data beyond the prior
    usage = LatentUsage(3)
    usage.update(output(posterior, prior_mean=prior))
    result = usage.compute()
    assert result["active_units"] == 3 and result["units_off_prior"] == 1


def test_active_units_count_dimensions_whose_posterior_mean_varies_over_the_data():
    torch.manual_seed(0)
    means = torch.zeros(50, 4, 3)
    means[..., 0] = torch.randn(50, 4)  # varies: active
    means[..., 1] = 5.0  # constant: inactive however large
    means[..., 2] = 0.05 * torch.randn(50, 4)  # variance 0.0025 < 0.01: inactive
    usage = LatentUsage(3)
    usage.update(output(means[:20]))
    usage.update(output(means[20:]))
    result = usage.compute()
    assert result["count"] == 200 and result["active_units"] == 1
    assert result["units_off_prior"] == 1  # the prior is N(0, I) here: the two counts agree
    assert torch.allclose(result["mean_variance"], means.flatten(0, 1).double().var(0, unbiased=False), atol=1e-9)
    assert torch.allclose(result["kl_per_dim"], 0.5 * means.flatten(0, 1).double().pow(2).mean(0), atol=1e-6)


def test_padding_is_left_out_of_latent_usage():
    torch.manual_seed(0)
    means = torch.randn(6, 5, 2)
    mask = torch.ones(6, 5)
    mask[:, 3:] = 0
    padded, real = LatentUsage(2), LatentUsage(2)
    padded.update(output(torch.where(mask.bool().unsqueeze(-1), means, 1e6), mask))
    real.update(output(means[:, :3]))
    for name, value in real.compute().items():
        assert torch.allclose(padded.compute()[name], value), name


def test_models_without_latents_leave_usage_empty():
    usage = LatentUsage(3)
    usage.update(SequenceOutput(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(2, 3, 1)))
    assert usage.compute()["count"] == 0


def test_usage_summed_across_ranks_equals_usage_over_the_whole_split():
    """What `compute` does under DDP: each state summed over ranks (its `dist_reduce_fx`), one rank empty."""
    torch.manual_seed(1)
    means = torch.randn(30, 4, 3) * torch.tensor([1.0, 0.01, 0.3])
    whole = LatentUsage(3)
    whole.update(output(means))
    ranks = [LatentUsage(3), LatentUsage(3), LatentUsage(3)]  # the third saw no batch
    ranks[0].update(output(means[:10]))
    ranks[1].update(output(means[10:]))
    merged = LatentUsage(3)
    for rank in ranks:
        assert rank._reductions["kl_sum"] is not None  # a sum across processes
        merged.merge_state(rank)
    for name, value in whole.compute().items():
        assert torch.allclose(merged.compute()[name], value), name


def test_units_off_prior_do_not_change_when_a_latent_is_rescaled():
    """z_u -> c z_u rescales the posterior's and the prior's means and stds alike: the model is the same, and so
    must be the count (a raw-unit threshold would call a shrunk dimension inactive)."""
    torch.manual_seed(0)
    prior = torch.randn(40, 5, 2)
    posterior = prior + torch.randn(40, 5, 2) * torch.tensor([0.5, 0.02])  # dimension 0 off the prior, 1 not
    counts = []
    for scale in (1.0, 0.05, 20.0):
        c = torch.tensor([scale, 1.0 / scale])
        ones = torch.ones(40, 5, 2)
        out = output(posterior * c, prior_mean=prior * c)
        out.posterior, out.prior = DiagonalGaussian(posterior * c, ones * c), DiagonalGaussian(prior * c, ones * c)
        usage = LatentUsage(2)
        usage.update(out)
        counts.append(int(usage.compute()["units_off_prior"]))
    assert counts == [1, 1, 1]

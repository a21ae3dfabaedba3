"""Predicted futures of frame sequences, scored as the video literature scores them (SVG, Denton and Fergus 2018;
SRVP, Franceschi et al. 2020): a model sees k frames, draws N futures of n frames, and each video is scored by
the best of its N futures, per predicted step, by PSNR and SSIM (torchmetrics' implementations); pictures of
the truth beside the best, a random and the worst future, as a PNG strip and a GIF."""

from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from vrnn_lightning.data.images import image_grid


@torch.no_grad()
def predict_futures(
    model: Any, x: Tensor, seen: int, predicted: int, futures: int, generator: torch.Generator
) -> Tensor:
    """N = `futures` futures of `predicted` frames for each video of x (B, T, C, H, W), after its first `seen`
    frames: (N, B, predicted, C, H, W). Each frame is the emission's most likely one (temperature 0), so that
    what differs between futures is what the latent variables drew, as in SVG's protocol; a model without
    latents predicts one future N times. (The frame head's most likely frame at temperature 0 is its expected
    one: pixels' probabilities for binary frames, so a PSNR is finite.)"""
    prime = x[:, :seen].to(model.device)
    draws = [model.generate(predicted, prime=prime, temperature=0.0, generator=generator) for _ in range(futures)]
    return torch.stack(draws).float().clamp(0, 1).cpu()


def frame_scores(prediction: Tensor, truth: Tensor) -> tuple[Tensor, Tensor]:
    """PSNR (dB, data range 1) and SSIM (Gaussian window of 11, as torchmetrics and SVG use) of each frame:
    (..., C, H, W) twice -> two (...) tensors. Frames smaller than the SSIM window use a window of their size."""
    lead, shape = prediction.shape[:-3], prediction.shape[-3:]
    flat_p, flat_t = prediction.reshape(-1, *shape).float(), truth.reshape(-1, *shape).float()
    psnr = peak_signal_noise_ratio(flat_p, flat_t, data_range=1.0, reduction="none", dim=(1, 2, 3))
    side = min(11, *shape[-2:])
    kernel = side if side % 2 else side - 1  # odd, as a Gaussian window must be
    ssim = structural_similarity_index_measure(
        flat_p, flat_t, data_range=1.0, reduction="none", kernel_size=kernel, sigma=1.5 * kernel / 11
    )
    return psnr.view(lead), ssim.view(lead)


def best_of_futures(futures: Tensor, truth: Tensor) -> dict[str, Tensor]:
    """futures (N, B, n, C, H, W), truth (B, n, C, H, W) -> what `best_of_scores` says of their scores."""
    return best_of_scores(*frame_scores(futures, truth.unsqueeze(0).expand_as(futures)))


def best_of_scores(psnr: Tensor, ssim: Tensor) -> dict[str, Tensor]:
    """PSNR and SSIM (N, B, n) of N futures -> per video and predicted step, the best PSNR and SSIM over the N
    futures (each video's future chosen by its mean SSIM over the steps, as SVG chooses, so both figures come
    from one future), and the index of the best and worst future of each video."""
    mean_ssim = ssim.mean(-1)  # (N, B)
    best, worst = mean_ssim.argmax(0), mean_ssim.argmin(0)  # (B,)
    videos = torch.arange(psnr.shape[1])
    return {"psnr": psnr[best, videos], "ssim": ssim[best, videos], "best": best, "worst": worst}


def scored_futures(
    model: Any, x: Tensor, seen: int, predicted: int, futures: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """PSNR and SSIM (N, B, n) of the N = `futures` futures `predict_futures` draws (the same draws), each scored
    before the next is drawn: memory holds one future's frames, not N (100 futures of a hundred 64 x 64 videos
    would need tens of GB)."""
    truth = x[:, seen : seen + predicted].cpu()  # frame_scores takes any dtype; the futures come back on the CPU
    scores = [frame_scores(predict_futures(model, x, seen, predicted, 1, generator)[0], truth) for _ in range(futures)]
    return torch.stack([p for p, _ in scores]), torch.stack([s for _, s in scores])


def future_pictures(
    x: Tensor, futures: Tensor, seen: int, generator: torch.Generator, count: int = 4
) -> tuple[Tensor, list[Tensor]]:
    """The first `count` videos of x (B, T, C, H, W) with `futures` (N, B, n, ...): a strip (rows: for each video
    the truth, then the best, a random and the worst future, all after the same seen frames; columns: time) and
    the GIF's frames (one grid per step, the four side by side for each video). Grey images in [0, 1]."""
    n = futures.shape[2]
    count = min(count, x.shape[0])
    truth = x[:count, : seen + n].float().cpu()
    scores = best_of_futures(futures[:, :count], truth[:, seen:])
    pick = torch.randint(futures.shape[0], (count,), generator=generator)
    rows = []
    for b in range(count):
        rows.append(truth[b])
        for which in (scores["best"][b], pick[b], scores["worst"][b]):
            rows.append(torch.cat([truth[b, :seen], futures[which, b]]))
    rows_t = torch.stack(rows).mean(2)  # (4 * count, seen + n, H, W): channels averaged to grey
    strip = image_grid(rows_t.flatten(0, 1), ncol=seen + n)
    frames = [image_grid(rows_t[:, t], ncol=4) for t in range(seen + n)]
    return strip, frames


def write_gif(path: Path, frames: list[Tensor], scale: int = 2, milliseconds: int = 200) -> Path:
    """Grey frames (H, W) in [0, 1] as an endlessly looping GIF, each pixel a `scale` x `scale` block."""
    from PIL import Image  # here: only writing a picture needs it

    images = [
        Image.fromarray((f.repeat_interleave(scale, 0).repeat_interleave(scale, 1).clamp(0, 1) * 255).byte().numpy())
        for f in frames
    ]
    images[0].save(path, save_all=True, append_images=images[1:], duration=milliseconds, loop=0)
    return path


@torch.no_grad()
def prediction_strip(model: Any, x: Tensor, seen: int, futures: int = 5, seed: int = 0) -> Tensor:
    """The strip of `future_pictures` for videos x (B, T, C, H, W): each continued from its first `seen` frames
    to its end, `futures` times (the pictures drawn after every validation)."""
    was_training = model.training
    model.eval()
    generator = torch.Generator(model.device).manual_seed(seed)
    drawn = predict_futures(model, x, seen, x.shape[1] - seen, futures, generator)
    model.train(was_training)
    return future_pictures(x, drawn, seen, torch.Generator().manual_seed(seed))[0]

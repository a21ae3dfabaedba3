"""FIVO (Maddison et al., 2017): the log of a particle filter's estimate of p(x), K particles proposed from q
step by step and resampled whenever their effective sample size falls below `resample_threshold` x K
(`resampling`: multinomial or systematic). Trained and judged by the same bound at its K: `val/fivo_bound`, the
negative bound per real step (lower is better, like `val/loss`). Its steps run eager, one at a time: the
particles are resampled between them, which no CUDA graph of a whole pass can replay.
"""

from typing import Any

from torch import Tensor

from vrnn_lightning.models.base import SequenceModel
from vrnn_lightning.objectives.base import Objective, Pass, Terms, check_count
from vrnn_lightning.objectives.bounds import RESAMPLING, fivo_bound


class FIVO(Objective):
    figure = "fivo_bound"
    needs_latents = True
    graphed = False
    steps_alone = True

    def __init__(self, samples: int = 4, resample_threshold: float = 0.5, resampling: str = "multinomial") -> None:
        super().__init__(samples=samples, resample_threshold=resample_threshold, resampling=resampling)
        self.samples, self.threshold, self.resampling = samples, resample_threshold, resampling

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        check_count(settings, "samples")
        threshold = settings.get("resample_threshold", 0.5)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
            raise ValueError(f"objective.resample_threshold must be a number from 0 to 1, got {threshold!r}")
        if settings.get("resampling", "multinomial") not in RESAMPLING:
            raise ValueError(
                f"objective.resampling must be one of {', '.join(RESAMPLING)}, got {settings['resampling']!r}"
            )

    def filtered(self, model: SequenceModel, x: Tensor, mask: Tensor) -> Any:
        return fivo_bound(model, x, mask, self.samples, self.threshold, self.resampling)

    def training_terms(self, module: Any, batch: Any) -> Terms:
        filtered = self.filtered(module.model, batch.x, batch.mask)
        loss = -filtered.bound.sum() / batch.mask.sum()
        figures = {"resamplings": filtered.resamplings.float().mean()}
        return Terms(loss, filtered.recon.sum(), filtered.kl.sum(), batch.mask, None, None, figures)

    def bound(self, model: SequenceModel, x: Tensor, mask: Tensor, run: Pass | None = None) -> Tensor:
        return self.filtered(model, x, mask).bound

"""Sample from a checkpoint: python -m vrnn_lightning.sample ckpt_path=... [prompt=ROMEO: length=500 ...]

Text: prints `num_samples` samples and saves them to samples.txt in the run folder. Images: writes PNG grids of
samples from the prior and of completions of test digits (top half read, bottom half generated).
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from vrnn_lightning.checkpoints import data_overrides, datamodule_from_checkpoint, read_checkpoint
from vrnn_lightning.errors import ConfigError, check_group_choices, one_line_errors
from vrnn_lightning.images import write_png
from vrnn_lightning.module import VRNNModule


def sample(cfg: DictConfig) -> list[Path]:
    """Write the samples into the run folder; returns the files written."""
    if cfg.get("length", 1) < 1:
        raise ConfigError(f"length={cfg.length} leaves nothing to generate; use length=1 or more")
    module = VRNNModule.load_checkpoint(cfg.ckpt_path)
    output_dir = Path(cfg.paths.output_dir)
    if module.hparams.vocab is not None:
        texts = [module.sample_text(cfg.prompt, cfg.length, cfg.temperature, seed=cfg.seed + i) for i in range(cfg.num_samples)]
        report = "".join(f"--- sample {i} ---\n{text}\n" for i, text in enumerate(texts))
        print(report, end="")
        path = output_dir / "samples.txt"
        path.write_text(report, encoding="utf-8")
        return [path]
    datamodule = datamodule_from_checkpoint(read_checkpoint(cfg.ckpt_path), **data_overrides(cfg))
    datamodule.setup("test")
    digits = next(iter(datamodule.test_dataloader()))[: cfg.num_samples]
    grids = module.image_grids(digits, seed=cfg.seed)
    return [write_png(output_dir / f"{name.split('/')[-1]}.png", grid, cfg.image_scale) for name, grid in grids.items()]


@hydra.main(version_base="1.3", config_path="../../conf", config_name="sample")
def main(cfg: DictConfig) -> None:
    with one_line_errors():
        paths = sample(cfg)
    for path in paths:
        print(f"wrote {path}")


if __name__ == "__main__":
    with one_line_errors():
        check_group_choices(sys.argv[1:])
    main()

"""Sample from a checkpoint: python -m vrnn_lightning.sample ckpt_path=... [prompt=ROMEO: length=500 ...]

The checkpoint's data module writes what a person reads or looks at: text prints `num_samples` samples and
saves them to samples.txt; images write PNG grids of samples from the prior and of completions of test digits.
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from vrnn_lightning.data.base import SampleRequest
from vrnn_lightning.errors import check_group_choices, one_line_errors
from vrnn_lightning.eval import data_overrides
from vrnn_lightning.launch.config_checks import check_against_checkpoint, check_config
from vrnn_lightning.training.checkpoints import (
    datamodule_class,
    datamodule_from_checkpoint,
    load_module,
    read_checkpoint,
)


def sample(cfg: DictConfig) -> list[Path]:
    """Write the samples into the run folder; returns the files written."""
    check_config(cfg, "sample")
    checkpoint = read_checkpoint(cfg.ckpt_path)
    check_against_checkpoint(cfg, "sample", checkpoint)
    module = load_module(checkpoint)
    request = SampleRequest(cfg.num_samples, cfg.length, cfg.temperature, cfg.seed, cfg.prompt, cfg.image_scale)
    return datamodule_class(checkpoint).write_samples(
        module.model.eval(),
        module.hparams.data_metadata,
        Path(cfg.paths.output_dir),
        request,
        load_data=lambda: datamodule_from_checkpoint(checkpoint, **data_overrides(cfg)),
    )


@hydra.main(version_base="1.3", config_path="conf", config_name="sample")
def main(cfg: DictConfig) -> None:
    with one_line_errors():
        paths = sample(cfg)
    for path in paths:
        print(f"wrote {path}")


def cli() -> None:
    """`vrnn-sample`, and `python -m vrnn_lightning.sample`: config groups checked in one line, then the main."""
    with one_line_errors():
        check_group_choices(sys.argv[1:])
    main()


if __name__ == "__main__":
    cli()

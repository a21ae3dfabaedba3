"""Sample from a checkpoint: python -m vrnn_lightning.sample ckpt_path=... [prompt=ROMEO: length=500 ...]

The checkpoint's data module writes what a person reads or looks at: text prints `num_samples` samples and
saves them to samples.txt; images write PNG grids of samples from the prior and of completions of test digits;
frames write predicted futures of test videos (futures.png, futures.gif) and prior samples.
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from vrnn_lightning.data.base import SampleRequest
from vrnn_lightning.errors import one_line_errors, run_cli
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
    request = SampleRequest(
        cfg.num_samples, cfg.length, cfg.temperature, cfg.seed, cfg.prompt, cfg.image_scale, cfg.futures, cfg.predicted
    )
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
    """`vrnn-sample`, and `python -m vrnn_lightning.sample`."""
    run_cli(main, name="sample")


if __name__ == "__main__":
    cli()

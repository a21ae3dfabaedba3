"""Every bad input the mains can be given: one line naming the problem and the fix, a non-zero exit, no
traceback (unless HYDRA_FULL_ERROR=1), and no earlier file changed."""

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers.runs import FIXTURE, TINY, TINY_MNIST, TINY_MODEL, run_main
from vrnn_lightning.data.arrays import save_npz

pytestmark = pytest.mark.slow  # end-to-end runs of the real entry points

Inputs = Callable[[Path, Path], list[str]]  # (folder for the case's files, a good text checkpoint) -> overrides


def text_file(content: bytes) -> Inputs:
    def make(folder: Path, ckpt: Path) -> list[str]:
        (folder / "corpus.txt").write_bytes(content)
        return ["train", *TINY, f"data.path={folder / 'corpus.txt'}"]

    return make


def checkpoint_file(write: Callable[[Path, Path], None], main: str = "eval") -> Inputs:
    def make(folder: Path, ckpt: Path) -> list[str]:
        write(folder / "given.ckpt", ckpt)
        return [main, f"ckpt_path={folder / 'given.ckpt'}"]

    return make


def corrupt_mnist(folder: Path, ckpt: Path) -> list[str]:
    shutil.copytree(FIXTURE, folder / "mnist")
    images = next((folder / "mnist").glob("*images*"))
    images.write_bytes(images.read_bytes()[:-10] + bytes(10))
    return ["train", *TINY_MNIST, f"data.root={folder / 'mnist'}"]


def output_under_a_file(folder: Path, ckpt: Path) -> list[str]:
    (folder / "a_file").write_text("not a folder")
    return ["train", *TINY, f"hydra.run.dir={folder / 'a_file' / 'run'}"]


def arrays_file(content: bytes, name: str) -> Inputs:
    def make(folder: Path, ckpt: Path) -> list[str]:
        (folder / name).write_bytes(content)
        return ["train", *TINY_MODEL, "data=arrays", f"data.path={folder / name}"]

    return make


def arrays_with_nan(folder: Path, ckpt: Path) -> list[str]:
    sequences = [np.ones((4, 2)), np.ones((5, 2)), np.ones((6, 2))]
    sequences[1][2, 0] = np.nan
    save_npz(folder / "nan.npz", {"train": sequences})
    return ["train", *TINY_MODEL, "data=arrays", f"data.path={folder / 'nan.npz'}"]


def ts_pair(folder: Path, name: str) -> list[str]:
    for split in ("TRAIN", "TEST"):
        (folder / f"{name}_{split}.ts").write_text("@problemName Good\n@data\n" + "1,2,3:3,4,5\n" * 12)
    return ["train", *TINY_MODEL, "data=uea", f"data.name={name}", f"data.root={folder}"]


def ts_with_a_bad_header(folder: Path, ckpt: Path) -> list[str]:
    (folder / "Bad_TRAIN.ts").write_text("@problemName Bad\ndimensions 2\n@data\n1,2:3,4\n")
    (folder / "Bad_TEST.ts").write_text("@problemName Bad\n@data\n1,2:3,4\n")
    return ["train", *TINY_MODEL, "data=uea", "data.name=Bad", f"data.root={folder}"]


MARKER = "PAYLOAD_RAN"  # what a crafted checkpoint's payload would create, were it run


class TouchesMarker:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def crafted(change: Callable[[dict, Path], None], main: str = "eval", *extra: str) -> Inputs:
    """A copy of the good text checkpoint, changed by `change(checkpoint, folder)`, given to `main`."""

    def write(path: Path, good: Path) -> None:
        checkpoint = torch.load(good, weights_only=True)
        change(checkpoint, path.parent)
        torch.save(checkpoint, path)

    def make(folder: Path, ckpt: Path) -> list[str]:
        return [*checkpoint_file(write, main)(folder, ckpt), *extra]

    return make


def with_pickled_payload(checkpoint: dict, folder: Path) -> None:
    checkpoint["callbacks"]["extra"] = TouchesMarker(folder / MARKER)


def with_target(key: str) -> Callable[[dict, Path], None]:
    def change(checkpoint: dict, folder: Path) -> None:
        payload = {"_target_": "subprocess.getoutput", "cmd": f"touch {folder / MARKER}"}
        if key == "model":
            checkpoint["model_config"] = payload
        elif key == "likelihood":
            checkpoint["model_config"]["likelihood"] = payload
        else:
            checkpoint["datamodule_class"] = "subprocess.getoutput"
            checkpoint["datamodule_hyper_parameters"] = {"cmd": payload["cmd"]}

    return change


def as_music(checkpoint: dict, folder: Path) -> None:
    """The good checkpoint, its data module the piano rolls' (what eval and sample check options against)."""
    checkpoint["datamodule_class"] = "vrnn_lightning.data.polyphonic.PolyphonicDataModule"
    checkpoint["datamodule_hyper_parameters"] = {"name": "jsb"}


def resume_from_crafted_last(folder: Path, ckpt: Path) -> list[str]:
    run = folder / "stopped"
    (run / "checkpoints").mkdir(parents=True)
    checkpoint = torch.load(ckpt, weights_only=True)
    with_pickled_payload(checkpoint, folder)
    torch.save(checkpoint, run / "checkpoints" / "last.ckpt")
    return ["train", *TINY, f"hydra.run.dir={run}", "ckpt_path=last"]


def make_file(folder: Path) -> Path:
    (folder / "a_file").write_text("not a folder")
    return folder / "a_file"


def user_config(folder: Path, text: str) -> Path:
    """A user's config folder holding experiment/mine.yaml with `text`."""
    (folder / "mine" / "experiment").mkdir(parents=True)
    (folder / "mine" / "experiment" / "mine.yaml").write_text(text)
    return folder / "mine"


BOUNDED_GAUSSIAN = ["model/likelihood=gaussian", "model.likelihood.bounded=true"]


def arrays_npz(folder: Path) -> Path:
    return save_npz(folder / "seq.npz", {"train": [np.ones((6, 2)) * i for i in range(12)]})


def videos_npz(folder: Path, **arrays: np.ndarray) -> Path:
    np.savez(folder / "videos.npz", **arrays)
    return folder / "videos.npz"


def one_frame_gif(folder: Path) -> Path:
    from PIL import Image

    (folder / "gifs").mkdir()
    for i in range(3):
        frames = [Image.fromarray(np.full((8, 8), 40 * k, np.uint8)) for k in range(1 if i == 1 else 3)]
        frames[0].save(folder / "gifs" / f"{i}.gif", save_all=True, append_images=frames[1:])
    return folder / "gifs"


MOVING_MNIST = ["data=moving_mnist", f"data.root={FIXTURE}", "data.download=false"]
BALLS = ["data=bouncing_balls"]
FRAMES = ["data=frames"]
CASES: dict[str, tuple[Inputs, list[str]]] = {
    "missing checkpoint": (
        lambda f, c: ["eval", f"ckpt_path={f / 'missing.ckpt'}"],
        ["is not a file", ".ckpt from a run folder"],
    ),
    "truncated checkpoint": (
        checkpoint_file(lambda p, good: p.write_bytes(good.read_bytes()[:4096])),
        ["cannot be read", "damaged"],
    ),
    "foreign checkpoint": (
        checkpoint_file(lambda p, good: torch.save({"state_dict": {}}, p)),
        ["not a vrnn-lightning checkpoint", "vrnn_lightning.train"],
    ),
    "checkpoint from before the model contract": (
        checkpoint_file(lambda p, good: torch.save({"net_config": {}, "state_dict": {}}, p), main="sample"),
        ["before its model contract", "train it again"],
    ),
    "CUDA graphs on the CPU": (
        lambda f, c: ["train", *TINY, "model.compile=reduce-overhead"],
        ["model.compile=reduce-overhead", "need a GPU", "model.compile=true"],
    ),
    "CUDA graphs switched on without a GPU": (
        lambda f, c: ["train", *TINY, "module.cuda_graphs=true"],
        ["module.cuda_graphs=true replays the model as CUDA graphs, which need a GPU", "module.cuda_graphs=auto"],
    ),
    "CUDA graphs switch not a choice": (
        lambda f, c: ["train", *TINY, "module.cuda_graphs=sometimes"],
        ["module.cuda_graphs='sometimes' is not valid", "auto, True, False"],
    ),
    "negative learning rate": (
        lambda f, c: ["train", *TINY, "module.optimizer.lr=-1"],
        ["module.optimizer.lr=-1 is not valid", "a number > 0"],
    ),
    "no training steps": (lambda f, c: ["train", *TINY, "trainer.max_steps=0"], ["trainer.max_steps=0", "-1"]),
    "a fractional step count": (lambda f, c: ["train", *TINY, "data.seq_len=16.5"], ["data.seq_len=16.5", "whole"]),
    "an unknown precision": (lambda f, c: ["train", *TINY, "trainer.precision=8"], ["trainer.precision=8", "bf16"]),
    "a negative temperature": (
        lambda f, c: ["sample", f"ckpt_path={c}", "temperature=-1"],
        ["temperature=-1 is not valid", ">= 0"],
    ),
    "an unknown eval device": (lambda f, c: ["eval", f"ckpt_path={c}", "device=tpu"], ["device='tpu'", "cuda"]),
    "sample from a missing checkpoint": (lambda f, c: ["sample", f"ckpt_path={f / 'nope.ckpt'}"], ["is not a file"]),
    "prompt outside the vocabulary": (
        lambda f, c: ["sample", f"ckpt_path={c}", "prompt='héllo€'"],
        ["'é€'", "not in the vocabulary", "use only"],
    ),
    "image options on a text checkpoint": (
        lambda f, c: ["eval", f"ckpt_path={c}", "data.root=/somewhere"],
        ["data.root does not apply", "CharDataModule", "its settings are"],
    ),
    "a misspelt eval option": (
        lambda f, c: ["eval", f"ckpt_path={c}", "eval.iw_sampls=3"],
        ["eval.iw_sampls is not a setting of this config", "did you mean eval.iw_samples"],
    ),
    "a sample option on eval": (
        lambda f, c: ["eval", f"ckpt_path={c}", "prompt=ROMEO"],
        ["prompt= does not apply to eval: it is an option of sample"],
    ),
    "a misspelt sample option": (
        lambda f, c: ["sample", f"ckpt_path={c}", "lenght=3"],
        ["lenght is not a setting of this config", "did you mean length"],
    ),
    "importance samples below one": (
        lambda f, c: ["eval", f"ckpt_path={c}", "eval.iw_samples=0"],
        ["eval.iw_samples=0", ">= 1"],
    ),
    "importance samples beyond any chunk": (
        lambda f, c: ["eval", f"ckpt_path={c}", "eval.iw_samples=1000000000000"],
        ["eval.iw_samples=1000000000000", "eval.iw_chunk=65536", "lower eval.iw_samples or raise eval.iw_chunk"],
    ),
    "particles beyond any chunk": (
        lambda f, c: ["eval", f"ckpt_path={c}", "eval.fivo_samples=70000"],
        ["eval.fivo_samples=70000", "eval.iw_chunk=65536"],
    ),
    "missing text file": (
        lambda f, c: ["train", *TINY, f"data.path={f / 'nope.txt'}"],
        ["is not a file", "UTF-8 text file"],
    ),
    "empty text file": (text_file(b""), ["is empty"]),
    "binary file": (text_file(bytes(range(128)) * 8), ["is binary", "NUL bytes"]),
    "non-UTF-8 text": (
        text_file("À la fenêtre, ô nuit".encode("latin-1") * 20),
        ["is not UTF-8", "convert it to UTF-8"],
    ),
    "seq_len longer than the training split": (
        lambda f, c: ["train", *TINY, "data.seq_len=2000000"],
        ["too few for a training window", "smaller data.seq_len"],
    ),
    "batch_size 0": (
        lambda f, c: ["train", *TINY, "data.batch_size=0"],
        ["data.batch_size=0 is not valid", "a whole number >= 1"],
    ),
    "z_dim 0": (lambda f, c: ["train", *TINY, "model.z_dim=0"], ["model.z_dim must be a whole number >= 1, got 0"]),
    "MNIST file failing its checksum": (corrupt_mnist, ["has md5", "expected", "downloaded again"]),
    "unknown trainer": (
        lambda f, c: ["train", *TINY, "trainer=tpu"],
        ["trainer=tpu is not a config", "cpu, ddp, ddp_cpu"],
    ),
    "unknown model in a sweep": (
        lambda f, c: ["train", "-m", "model=vrnn,transformer"],
        ["model=transformer", "dmm, rnn, srnn, storn, vrnn"],
    ),
    "unwritable output folder": (output_under_a_file, ["cannot use", "as the output folder", "hydra.run.dir"]),
    "arrays not in .npz or .npy": (arrays_file(b"1,2,3\n", "seq.csv"), ["not a .npz file or a folder of .npy"]),
    "arrays holding NaN": (arrays_with_nan, ["train split: sequence 1 holds nan at step 2, dim 0"]),
    "mixture of 0 components": (
        lambda f, c: [*ts_pair(f, "Good"), "model.likelihood.components=0"],
        ["model.likelihood.components must be a whole number >= 1, got 0"],
    ),
    "unknown evaluation split": (
        lambda f, c: ["eval", f"ckpt_path={c}", "split=train"],
        ["split='train' is not valid", "test, val, heldout"],
    ),
    "stateful training on too short a text": (
        lambda f, c: ["train", *TINY, "data.stateful=true", "data.batch_size=100000"],
        ["into 100000 streams", "shorter than one window", "smaller data.batch_size"],
    ),
    ".ts header that does not parse": (
        ts_with_a_bad_header,
        ["Bad_TRAIN.ts, line 2: 'dimensions 2'", "neither a header"],
    ),
}
# Refused before the run folder is claimed, and a crafted checkpoint's payload never runs.
EARLY_CASES: dict[str, tuple[Inputs, list[str]]] = {
    "checkpoint with a pickled payload, eval": (
        crafted(with_pickled_payload),
        ["holds a pickled posix.system", "not read", "convert_checkpoint"],
    ),
    "checkpoint with a pickled payload, sample": (crafted(with_pickled_payload, "sample"), ["pickled posix.system"]),
    "checkpoint with a pickled payload, resumed by path": (
        crafted(with_pickled_payload, "train", *TINY),
        ["pickled posix.system"],
    ),
    "model _target_ payload": (
        crafted(with_target("model")),
        ["model_config._target_='subprocess.getoutput' is not a SequenceModel", "not loaded"],
    ),
    "likelihood _target_ payload": (
        crafted(with_target("likelihood"), "sample"),
        ["model_config.likelihood._target_='subprocess.getoutput' is not a Likelihood"],
    ),
    "data module class payload": (
        crafted(with_target("data")),
        ["datamodule_class='subprocess.getoutput' is not a SequenceDataModule"],
    ),
    "categorical head on piano rolls": (
        lambda f, c: ["train", *TINY_MODEL, "data=polyphonic", "model/likelihood=categorical"],
        ["model/likelihood=categorical scores symbols", "data=polyphonic serves binary", "bernoulli or made"],
    ),
    "autoregressive head on text": (
        lambda f, c: ["train", *TINY, "model/likelihood=made"],
        ["model/likelihood=made scores binary values", "data=shakespeare serves symbols", "categorical"],
    ),
    "autoregressive head on real values": (
        lambda f, c: ["train", *TINY_MODEL, "data=arrays", f"data.path={arrays_npz(f)}", "model/likelihood=made"],
        ["model/likelihood=made scores binary values", "serves real values", "gaussian or gmm"],
    ),
    "autoregressive head of no hidden units": (
        lambda f, c: [
            "train",
            *TINY_MODEL,
            "data=polyphonic",
            "model/likelihood=made",
            "model.likelihood.hidden_dim=0",
        ],
        ["model.likelihood.hidden_dim must be a whole number >= 1, got 0"],
    ),
    "mixture head on text": (
        lambda f, c: ["train", *TINY, "model/likelihood=gmm"],
        ["model/likelihood=gmm scores real", "serves symbols", "model/likelihood=categorical"],
    ),
    "Bernoulli head on MNIST intensities": (
        lambda f, c: ["train", *TINY_MNIST, "data.binarize=false"],
        ["serves unit_interval values", "model/likelihood=gaussian"],
    ),
    "bounded Gaussian on real values": (
        lambda f, c: [*["train", *TINY_MODEL, "data=arrays", f"data.path={arrays_npz(f)}"], *BOUNDED_GAUSSIAN],
        ["model.likelihood.bounded=true is for intensities", "bounded=false"],
    ),
    "unknown polyphonic set": (
        lambda f, c: ["train", *TINY_MODEL, "data=polyphonic", "data.name=bach"],
        ["data.name='bach' is not a polyphonic set", "jsb, nottingham, musedata, pianomidi"],
    ),
    "validation share above one": (
        lambda f, c: ["train", *TINY_MODEL, "data=arrays", f"data.path={arrays_npz(f)}", "data.val_fraction=1.5"],
        ["data.val_fraction=1.5 must lie between 0 and 1"],
    ),
    "arrays path that does not exist": (
        lambda f, c: ["train", *TINY_MODEL, "data=arrays", f"data.path={f / 'none.npz'}"],
        ["none.npz does not exist", ".npz file or a folder of .npy"],
    ),
    "normalize not true or false": (
        lambda f, c: ["train", *TINY_MODEL, "data=uea", "data.normalize=maybe"],
        ["data.normalize='maybe' must be true or false"],
    ),
    "a UEA set named by its file": (
        lambda f, c: ["train", *TINY_MODEL, "data=uea", "data.name=JapaneseVowels_TRAIN.ts"],
        ["is a set's name", "data.root"],
    ),
    "an MNIST layout that does not exist": (
        lambda f, c: ["train", *TINY_MNIST, "data.layout=diagonal"],
        ["data.layout='diagonal' is not valid", "rows or columns"],
    ),
    "a config folder that does not exist": (
        lambda f, c: ["train", "--config-dir", str(f / "nowhere"), "experiment=my_run"],
        ["--config-dir=", "nowhere is not a folder", "(looked for", "experiment/, model/"],
    ),
    "an experiment found nowhere": (
        lambda f, c: ["train", "--config-dir", str(f), "experiment=my_run"],
        ["experiment=my_run is not a config of experiment/", "(looked in", "shakespeare_vrnn"],
    ),
    "heldout split of music": (
        crafted(as_music, "eval", "split=heldout"),
        ["split=heldout is not a split of this checkpoint's data (PolyphonicDataModule)", "val, test"],
    ),
    "carried state on music": (
        crafted(as_music, "eval", "eval.stateful=true"),
        ["eval.stateful=true carries the state", "drop it"],
    ),
    "a prompt for music": (crafted(as_music, "sample", "prompt=ROMEO:"), ["prompt= continues a text", "drop prompt="]),
    "a text option for music": (
        crafted(as_music, "eval", "data.path=/some/text.txt"),
        ["data.path does not apply", "PolyphonicDataModule"],
    ),
    "a user config that is not YAML": (
        lambda f, c: ["train", "--config-dir", str(user_config(f, "model:\n  h_dim: [1, 2\n")), "experiment=mine"],
        ["mine.yaml, line 3 is not valid YAML", "fix the file"],
    ),
    "a user experiment picking a model found nowhere": (
        lambda f, c: [
            "train",
            "--config-dir",
            str(user_config(f, "# @package _global_\ndefaults:\n  - override /model: transformer\n")),
            "experiment=mine",
        ],
        ["mine.yaml picks model=transformer, which is not a config of model/", "(looked in", "dmm, rnn, srnn"],
    ),
    "an SRNN's Resq not true or false": (
        lambda f, c: ["train", *TINY_MODEL[:3], "model=srnn", "model.resq=2"],
        ["model.resq must be true or false, got 2"],
    ),
    "a setting the model does not have": (
        lambda f, c: ["train", "model=dmm", "+model.z_feat_dim=8"],
        ["model.z_feat_dim is not a setting of DMM", "its settings are"],
    ),
    "FIVO without latent variables": (
        lambda f, c: ["train", "model=rnn", "objective=fivo"],
        ["objective=fivo cannot train RNN: it has no latent variables"],
    ),
    "a resampling threshold above one": (
        lambda f, c: ["train", *TINY, "objective=fivo", "objective.resample_threshold=1.5"],
        ["objective.resample_threshold must be a number from 0 to 1, got 1.5"],
    ),
    "an unknown resampling scheme": (
        lambda f, c: ["train", *TINY, "objective=fivo", "objective.resampling=stratified"],
        ["objective.resampling must be one of multinomial, systematic, got 'stratified'"],
    ),
    "FIVO with no particles": (
        lambda f, c: ["train", *TINY, "objective=fivo", "objective.samples=0"],
        ["objective.samples must be a whole number >= 1, got 0"],
    ),
    "an objective setting by its old name": (
        lambda f, c: ["train", *TINY, "module.objective=fivo"],
        ["module.objective has moved", "use objective=NAME (conf/objective/)"],
    ),
    "an experiment's ELBO setting under FIVO": (
        lambda f, c: ["train", "experiment=polyphonic_srnn", "objective=fivo"],
        ["objective.kl_warmup_steps is not a setting of FIVO", "drop it with ~objective.kl_warmup_steps"],
    ),
    "FIVO on carried state": (
        lambda f, c: ["train", *TINY, "data.stateful=true", "objective=fivo"],
        ["objective=fivo draws K trajectories per window and cannot carry one state between windows"],
    ),
    "an MLflow store under a file": (
        lambda f, c: ["train", *TINY, "logger=mlflow", f"logger.mlflow.tracking_uri=sqlite:///{make_file(f)}/runs.db"],
        ["logger.mlflow.tracking_uri=sqlite:///", "is not a folder", "MLflow cannot keep its runs there"],
    ),
    "an unknown logger": (
        lambda f, c: ["train", "logger=comet"],
        ["logger=comet is not a config of logger/", "csv, many, mlflow, tensorboard, wandb"],
    ),
    "a frame smaller than a digit": (
        lambda f, c: ["train", *MOVING_MNIST, "data.frame_size=12"],
        ["data.digit_size=14 does not fit in a frame of data.frame_size=12 pixels"],
    ),
    "no digits": (
        lambda f, c: ["train", *MOVING_MNIST, "data.digits=0"],
        ["data.digits=0 must be a whole number >= 1"],
    ),
    "no balls": (lambda f, c: ["train", *BALLS, "data.balls=0"], ["data.balls=0 must be a whole number >= 1"]),
    "as many seen frames as the video has": (
        lambda f, c: ["train", *BALLS, "data.seen=20", "data.seq_len=20"],
        ["data.seen=20 frames must be fewer than data.seq_len=20"],
    ),
    "videos of different frame shapes": (
        lambda f, c: ["train", *FRAMES, f"data.path={videos_npz(f, a=np.zeros((4, 8, 8)), b=np.zeros((4, 9, 8)))}"],
        ["video 1 has frames (1, 9, 8), video 0 (1, 8, 8)", "same frame shape"],
    ),
    "videos holding NaN": (
        lambda f, c: ["train", *FRAMES, f"data.path={videos_npz(f, v=np.full((3, 4, 8, 8), np.nan))}"],
        ["holds NaN or infinite pixels"],
    ),
    "a GIF of one frame": (
        lambda f, c: ["train", *FRAMES, f"data.path={one_frame_gif(f)}"],
        ["1.gif has 1 frame; a video needs at least 2"],
    ),
    "a frame head on vector data": (
        lambda f, c: ["train", *TINY, "model/likelihood=frames"],
        ["model/likelihood=frames scores binary_frames or unit_interval_frames", "model/likelihood=categorical"],
    ),
    "a vector head on frames": (
        lambda f, c: ["train", *BALLS, "model/likelihood=bernoulli"],
        ["model/likelihood=bernoulli scores binary values", "serves binary_frames", "model/likelihood=frames"],
    ),
    "FIVO through a frame head with skips": (
        lambda f, c: ["train", *BALLS, "model.likelihood.skips=true", "objective=fivo"],
        ["objective=fivo steps the model one frame at a time", "model.likelihood.skips=true", "skips=false"],
    ),
    "Bernoulli pixels on grey frames": (
        lambda f, c: ["train", *BALLS, "data.binarize=false"],
        ["model.likelihood.pixels=bernoulli scores binary pixels", "pixels=gaussian"],
    ),
    "an MLflow server that does not answer": (
        lambda f, c: ["train", *TINY, "logger=mlflow", "logger.mlflow.tracking_uri=http://127.0.0.1:1"],
        ["logger.mlflow.tracking_uri=http://127.0.0.1:1", "cannot be reached", "sqlite:///"],
    ),
    "an unknown W&B mode": (
        lambda f, c: ["train", *TINY, "logger=wandb", "logger.wandb.mode=bogus"],
        ["logger.wandb.mode='bogus' (WANDB_MODE) is not a W&B mode", "offline"],
    ),
    "a sweep whose second job lacks a setting": (
        lambda f, c: ["train", "-m", *TINY, "model=vrnn,srnn", "model.z_feat_dim=8", f"hydra.sweep.dir={f / 'run'}"],
        ["sweep job 1 of 2 (model=srnn): model.z_feat_dim is not a setting of this config"],
    ),
    "a sweep whose second job cannot run": (
        lambda f, c: [
            "train",
            "-m",
            *TINY,
            "model=vrnn,storn",
            "model.posterior=smoothing",
            f"hydra.sweep.dir={f / 'run'}",
        ],
        ["sweep job 1 of 2 (model=storn): model.posterior must be 'filtering', got 'smoothing'"],
    ),
    "a misspelt model setting": (
        lambda f, c: ["train", "model=srnn", "model.z_dimm=8"],
        ["model.z_dimm is not a setting of this config; did you mean model.z_dim"],
    ),
    "an unquoted path beyond ASCII": (
        lambda f, c: ["train", *TINY, f"data.path={f / 'café.txt'}"],
        ["café.txt holds characters Hydra reads only in quotes; write data.path='"],
    ),
    "an empty run folder": (lambda f, c: ["train", *TINY, "hydra.run.dir="], ["hydra.run.dir is empty"]),
    "an empty text path": (lambda f, c: ["train", *TINY, "data.path="], ["data.path='' is empty", "data.path=null"]),
    "an empty arrays path": (lambda f, c: ["train", "data=arrays", "data.path=''"], ["data=arrays needs data.path="]),
    "a model given to eval": (
        lambda f, c: ["eval", f"ckpt_path={c}", "+model=dmm"],
        ["model= does not apply to eval: the checkpoint's own settings are used"],
    ),
    "an eval option given to sample": (
        lambda f, c: ["sample", f"ckpt_path={c}", "eval.fivo_samples=4"],
        ["eval.fivo_samples= does not apply to sample: it is an option of eval"],
    ),
    "a misspelt Trainer argument": (
        lambda f, c: ["train", *TINY, "trainer.max_step=4"],
        ["trainer.max_step is not an argument of Lightning's Trainer; did you mean trainer.max_steps"],
    ),
    "a piano-roll source that does not exist": (
        lambda f, c: ["train", *TINY_MODEL, "data=polyphonic", "data.source=midi"],
        ["data.source='midi' is not a source of piano rolls", "srnn"],
    ),
}
CASES.update(EARLY_CASES)
KEEPS_FOLDER: set[str] = set()  # cases whose run folder holds more than Hydra's files when they are refused
CASES["a checkpoint whose weights do not fit its model"] = (
    crafted(lambda checkpoint, folder: checkpoint["model_config"].update(h_dim=24)),
    ["do not fit the model built from its settings", "is (16, 16) in the checkpoint and (16, 24) in the model"],
)
CASES["resumed from a crafted last.ckpt"] = (resume_from_crafted_last, ["pickled posix.system"])
if torch.cuda.is_available():
    del CASES["CUDA graphs switched on without a GPU"]
if not torch.cuda.is_available():
    CASES["trainer=gpu without CUDA"] = (
        lambda f, c: ["train", "trainer=gpu"],
        ["asks for a CUDA GPU but none is visible", "trainer=cpu"],
    )


def snapshot(root: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def text_checkpoint(tiny_run) -> Path:
    result, run_dir = tiny_run
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gets_one_line_and_loses_nothing(case, tmp_path, text_checkpoint):
    make_inputs, fragments = CASES[case]
    ckpt = tmp_path / "good" / "last.ckpt"
    ckpt.parent.mkdir()
    shutil.copy(text_checkpoint, ckpt)
    main, *overrides = make_inputs(tmp_path, ckpt)
    if not any(o.startswith("hydra.run.dir=") for o in overrides):
        overrides.append(f"hydra.run.dir={tmp_path / 'run'}")
    before = snapshot(tmp_path)
    result = run_main(main, *overrides, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    assert all(f in lines[0] for f in fragments), lines[0]
    after = snapshot(tmp_path)
    assert {p: after.get(p) for p in before} == before  # nothing earlier changed or removed
    assert not [p for p in set(after) - set(before) if p.suffix == ".ckpt"], "a checkpoint was written"
    assert not list(tmp_path.rglob(MARKER)), "a crafted checkpoint ran its payload"
    # refused before the folder was made, or the folder given back untouched: the same command works once fixed
    assert not (tmp_path / "run").exists() or case in KEEPS_FOLDER, "a run folder was left behind"


def test_hydra_full_error_shows_the_traceback(tmp_path):
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "vrnn_lightning.train", *TINY, "model.z_dim=0", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert (
        result.returncode != 0
        and "Traceback" in result.stderr
        and "model.z_dim must be a whole number >= 1" in result.stderr
    )


def test_resuming_another_runs_checkpoint_into_a_used_folder_is_refused(tmp_path, text_checkpoint):
    used = tmp_path / "used"
    (used / "checkpoints").mkdir(parents=True)
    (used / "checkpoints" / "last.ckpt").write_bytes(b"another run's work")
    result = run_main("train", *TINY, f"ckpt_path={text_checkpoint}", f"hydra.run.dir={used}", cwd=tmp_path)
    assert result.returncode == 2 and "already holds an earlier run" in result.stderr
    assert (used / "checkpoints" / "last.ckpt").read_bytes() == b"another run's work"

"""When a multirun ends: one table and one plot of every job, instead of a pile of folders.

Each training run writes metrics.json into its folder; `SweepSummary` reads them with each job's overrides
and writes summary.csv, summary.md and summary.png into the sweep folder, and the definition of the sweep's
table in TensorBoard's HPARAMS tab (its swept settings and final figures as the columns).
"""

import csv
import json
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from vrnn_lightning.launch.hparams import final_figures
from vrnn_lightning.launch.trackers import experiment_name

log = logging.getLogger(__name__)
TEST_TERMS = ["test/loss", "test/kl", "test/recon"]


def judged_columns(rows: list[dict[str, Any]]) -> list[str]:
    """The best validation figures the jobs were judged by (`best_val_loss` for the ELBO, `best_val_iw_bound`,
    `best_val_fivo_bound` for the objectives that train on those bounds; the data's own, e.g. `best_val_bpc`),
    the ELBO first; then each objective's own test bound (`test/*_bound`)."""
    keys = {key for row in rows for key in row}
    best = sorted((k for k in keys if k.startswith("best_val_")), key=lambda k: (k != "best_val_loss", k))
    return [*best, *sorted(k for k in keys if k.startswith("test/") and k.endswith("_bound"))]


def columns(rows: list[dict[str, Any]]) -> list[str]:
    return [*judged_columns(rows), *TEST_TERMS, "wall_s"]


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per finished job: its number, its overrides and its metrics."""
    rows = []
    for job in sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)):
        metrics_file, overrides_file = job / "metrics.json", job / ".hydra" / "overrides.yaml"
        if not metrics_file.is_file():
            log.warning("sweep job %s left no metrics.json (failed or still running); left out of the summary", job)
            continue
        overrides = OmegaConf.load(overrides_file) if overrides_file.is_file() else []
        rows.append({"job": int(job.name), "overrides": " ".join(overrides), **json.loads(metrics_file.read_text())})
    return rows


def swept_keys(rows: list[dict[str, Any]]) -> list[str]:
    """The override keys whose values differ between jobs."""
    values: dict[str, set[str]] = {}
    for row in rows:
        for override in row["overrides"].split():
            key, _, value = override.partition("=")
            values.setdefault(key, set()).add(value)
    return [key for key, seen in values.items() if len(seen) > 1]


def write_summary(sweep_dir: Path) -> list[Path]:
    rows = collect(sweep_dir)
    if not rows:
        return []
    keys = swept_keys(rows)
    for row in rows:
        settings = dict(o.partition("=")[::2] for o in row["overrides"].split())
        row.update({key: settings.get(key, "") for key in keys})
    header = ["job", *keys, *columns(rows), "overrides"]
    with (sweep_dir / "summary.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    cell = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell(row.get(h, "")) for h in header) + " |" for row in rows]
    (sweep_dir / "summary.md").write_text("\n".join(lines) + "\n")
    written = [sweep_dir / "summary.csv", sweep_dir / "summary.md", plot(rows, keys, sweep_dir / "summary.png")]
    return [*written, *hparams_experiment(rows, keys, sweep_dir)]


def number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def hparams_experiment(rows: list[dict[str, Any]], keys: list[str], sweep_dir: Path) -> list[Path]:
    """An events file in the sweep folder that tells TensorBoard's HPARAMS tab what the sweep is: the swept
    settings and the final figures as its columns (each job logs all its settings; without this the table would
    open on the first few by name, rarely the swept ones)."""
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    figures = final_figures(rows[0])
    if not keys or not figures:
        return []
    experiment, _, _ = hparams({key: number_or_text(rows[0][key]) for key in keys}, figures)
    writer = SummaryWriter(log_dir=str(sweep_dir), filename_suffix=".sweep")
    writer.file_writer.add_summary(experiment)
    writer.close()
    return sorted(sweep_dir.glob("events.out.tfevents.*.sweep"))


def plot(rows: list[dict[str, Any]], keys: list[str], path: Path) -> Path:
    """The best validation figures the jobs were judged by, and the test ELBO, against the swept value (one
    numeric key), else against the job number."""
    # Here, not at the top: every run loads this module, only a sweep's end draws. No pyplot, so a notebook's
    # own matplotlib backend is left as it was.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    x_key = keys[0] if len(keys) == 1 else "job"
    try:
        xs = [float(row[x_key]) for row in rows]
    except ValueError:
        x_key, xs = "job", [row["job"] for row in rows]
    figure = Figure(figsize=(6, 4))
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    plotted = [k for k in judged_columns(rows) if k == "best_val_loss" or k.endswith("_bound")]
    for metric in [*plotted, "test/loss"]:
        points = sorted((x, row[metric]) for x, row in zip(xs, rows, strict=True) if isinstance(row.get(metric), float))
        if points:
            axes.plot(*zip(*points, strict=True), marker="o", label=metric)
    axes.set_xlabel(x_key)
    axes.set_ylabel("negative bound per step (nats)")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def summary_to_mlflow(config: DictConfig, paths: list[Path]) -> None:
    """The sweep's summary files as the artifacts of a run named "sweep summary" in the sweep's MLflow experiment,
    where the jobs logged to MLflow; a tracker that cannot take them is one warning."""
    node = OmegaConf.select(config, "logger.mlflow")
    if not OmegaConf.is_dict(node) or not paths:
        return
    sweep_dir = Path(config.hydra.sweep.dir)
    try:
        import mlflow

        client = mlflow.MlflowClient(str(node.tracking_uri))
        experiment = client.get_experiment_by_name(experiment_name(str(sweep_dir / "0"), str(config.task_name)))
        if experiment is None:  # no job reached MLflow
            return
        run = client.create_run(experiment.experiment_id, run_name="sweep summary", tags={"sweep": sweep_dir.name})
        for path in paths:
            client.log_artifact(run.info.run_id, str(path))
        client.set_terminated(run.info.run_id)
        log.info("sweep summary: MLflow experiment %r, run %r", experiment.name, "sweep summary")
    except Exception as err:
        log.warning("the sweep summary did not reach MLflow (%s: %s)", type(err).__name__, str(err).splitlines()[0])


def summary_to_wandb(config: DictConfig, paths: list[Path]) -> None:
    """The sweep's summary as a W&B run named "sweep summary" in the jobs' group: the plot as an image, the table
    as a W&B table, and the three files; offline unless WANDB_MODE says otherwise, as the jobs were."""
    node = OmegaConf.select(config, "logger.wandb")
    if not OmegaConf.is_dict(node) or not paths:
        return
    sweep_dir = Path(config.hydra.sweep.dir)
    try:
        import wandb

        run = wandb.init(
            project=str(node.project),
            group=experiment_name(str(sweep_dir / "0"), str(config.task_name)),
            name="sweep summary",
            job_type="sweep summary",
            tags=[f"sweep={sweep_dir.name}"],
            dir=str(sweep_dir),
            mode=str(node.mode),
        )
        logged: dict[str, Any] = {}
        for path in paths:
            if path.suffix == ".png":
                logged["sweep/summary"] = wandb.Image(str(path))
            elif path.suffix == ".csv":
                with open(path, newline="") as table:
                    header, *rows = list(csv.reader(table))
                logged["sweep/table"] = wandb.Table(columns=header, data=rows)
            run.save(str(path), base_path=str(path.parent), policy="now")
        run.log(logged)
        run.finish()
        log.info("sweep summary: W&B group %r, run %r", run.group, "sweep summary")
    except Exception as err:
        log.warning("the sweep summary did not reach W&B (%s: %s)", type(err).__name__, str(err).splitlines()[0])


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        paths = write_summary(Path(config.hydra.sweep.dir))
        for path in paths:
            log.info("sweep summary: %s", path)
        shared = [p for p in paths if p.suffix in (".csv", ".md", ".png")]
        summary_to_mlflow(config, shared)
        summary_to_wandb(config, shared)

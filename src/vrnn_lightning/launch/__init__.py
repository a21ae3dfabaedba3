"""Where a run lives: DDP ranks, multirun jobs and requeued SLURM jobs (`ranks.py`), run folders (`run_folders.py`,
Hydra callbacks), the checks of every option before a folder is made (`config_checks.py`), the sweep summary
(`sweeps.py`) and each run's settings beside its figures for TensorBoard (`hparams.py`). Imports Hydra; used by
the mains and by `conf/hydra/`."""

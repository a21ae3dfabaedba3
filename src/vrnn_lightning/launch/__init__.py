"""Where a run lives: DDP ranks, multirun jobs and requeued SLURM jobs (`ranks.py`), run folders (`run_folders.py`,
Hydra callbacks), the sweep summary (`sweeps.py`). Imports Hydra; used by the mains and by `conf/hydra/`."""

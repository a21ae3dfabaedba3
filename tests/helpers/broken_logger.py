"""A tracker whose server goes away mid-run: its fourth call to log_metrics and every one after it fail."""

from lightning.pytorch.loggers import CSVLogger


class BrokenLogger(CSVLogger):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls = 0

    def log_metrics(self, metrics, step=None) -> None:
        self.calls += 1
        if self.calls > 3:
            raise ConnectionError("the tracking server went away\nmore detail")
        super().log_metrics(metrics, step)

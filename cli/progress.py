"""A progress bar that appears only when a run takes longer than a moment."""

from __future__ import annotations

import time

from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from cli.common import err_console

SHOW_AFTER_S = 1.5


class LazyProgress:
    def __init__(self, label: str):
        self.label = label
        self.start = time.monotonic()
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def __call__(self, fraction: float) -> None:
        if self.bar is None:
            if time.monotonic() - self.start < SHOW_AFTER_S or not err_console.is_terminal:
                return
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                TextColumn("{task.percentage:>3.0f}% of simulated time"),
                                TimeElapsedColumn(), console=err_console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=1.0)
        if self.task is not None:
            self.bar.update(self.task, completed=fraction)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

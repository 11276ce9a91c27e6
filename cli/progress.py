"""A progress bar that appears only when a run takes longer than a moment."""

from __future__ import annotations

import time

from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cli.common import err_console

SHOW_AFTER_S = 1.5


class LazyProgress:
    def __init__(self, label: str, unit: str = "of simulated time"):
        self.label, self.unit = label, unit
        self.start = time.monotonic()
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def __call__(self, fraction: float) -> None:
        if self.bar is None:
            if time.monotonic() - self.start < SHOW_AFTER_S or not err_console.is_terminal:
                return
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                TextColumn("{task.percentage:>3.0f}% " + self.unit),
                                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                console=err_console, transient=True)
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


def say_estimate(line: str | None) -> None:
    """An estimate before long work, on stderr (so a piped answer stays clean)."""
    if line is not None:
        err_console.print(line, highlight=False, soft_wrap=True)


class CountProgress:
    """Jobs done out of a total, as a bar on a terminal after a moment; silent when piped.
    Called as progress(done, total)."""

    def __init__(self, label: str, unit: str = "of candidates"):
        self.lazy = LazyProgress(label, unit)

    def __enter__(self):
        self.lazy.__enter__()
        return self

    def __call__(self, done: int, total: int) -> None:
        self.lazy(done / total if total else 1.0)

    def __exit__(self, *exc):
        return self.lazy.__exit__(*exc)

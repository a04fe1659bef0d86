"""A byte progress bar for downloads (rich, an mmengine dependency), or a
no-op where it is disabled or unavailable."""
from typing import Optional

__all__ = ['Progress']


class Progress:
    """Byte progress bar (rich, an mmengine dependency) or a no-op."""

    def __init__(self, enabled: bool, name: str, total: Optional[int],
                 done: int):
        self._progress = None
        if not enabled:
            return
        try:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )
        except ImportError:  # pragma: no cover - rich ships with mmengine
            return
        self._progress = Progress(
            TextColumn('[bold]{task.description}'), BarColumn(),
            DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
        self._progress.start()
        self._task = self._progress.add_task(
            name, total=total, completed=done)

    def update(self, n: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=n)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

"""Progress bars for long work (rich), quiet when asked."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

console = Console(stderr=True)


def quiet() -> bool:
    return os.environ.get("AUGMENT_QUIET", "") not in ("", "0")


class _Progress(Progress):
    """A rich progress bar that, when stderr is not a terminal (a log file, CI), prints a plain line
    per task every ``LOG_SECONDS`` instead of staying silent until the end."""

    LOG_SECONDS = 30.0

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._logged: dict[int, float] = {}

    def _maybe_log(self, task_id: int) -> None:
        if self.disable or self.console.is_terminal:
            return
        now = time.monotonic()
        last = self._logged.setdefault(task_id, now)
        task = self._tasks.get(task_id)  # type: ignore[arg-type]
        if task is None or now - last < self.LOG_SECONDS:
            return
        self._logged[task_id] = now
        total = f"/{task.total:g}" if task.total else ""
        info = task.fields.get("info", "")
        self.console.print(f"{task.description}: {task.completed:g}{total} {info}".rstrip(), highlight=False)

    def update(self, task_id, **kwargs) -> None:  # type: ignore[no-untyped-def, override]
        super().update(task_id, **kwargs)
        self._maybe_log(task_id)

    def advance(self, task_id, advance: float = 1) -> None:  # type: ignore[no-untyped-def, override]
        super().advance(task_id, advance)
        self._maybe_log(task_id)


def make_progress(*extra_columns: object) -> Progress:
    """A progress bar on stderr; pass extra columns (e.g. losses) to show more."""
    return _Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra_columns,  # type: ignore[arg-type]
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=quiet(),
    )


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with make_progress() as prog:
        task = prog.add_task(description, total=total)
        for item in items:
            yield item
            prog.advance(task)

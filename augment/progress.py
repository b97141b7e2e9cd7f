"""Progress bars for long work (rich), quiet when asked."""

from __future__ import annotations

import os
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


def make_progress(*extra_columns: object) -> Progress:
    """A progress bar on stderr; pass extra columns (e.g. losses) to show more."""
    return Progress(
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

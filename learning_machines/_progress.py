"""Progress of long work, for people: a rich bar on a terminal, plain lines elsewhere (CI, logs).

Library code reports progress through a plain callback, ``on_progress(done, total)``; a command
line or a benchmark turns it into output with :func:`progress`::

    with progress("re-embedding", total=n) as bar:
        await service.areembed(on_progress=bar.update)

Plain mode prints a line at most every ``interval`` seconds (and a last one if it printed any),
so quick work stays quiet and slow work shows it is alive. Output goes to stderr, keeping
stdout for results (``--json``).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress

__all__ = ["Progress", "ProgressCallback", "progress"]

#: Called as work advances with ``(done, total)``; ``total`` is ``None`` when unknown.
ProgressCallback = Callable[[int, int | None], None]


def interactive(stream: IO[str]) -> bool:
    """Whether ``stream`` is an interactive terminal (and not a CI log)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("CI")


class Progress:
    """One piece of long work being reported, as plain lines; get it from :func:`progress`."""

    def __init__(
        self, description: str, *, total: int | None, stream: IO[str], interval: float
    ) -> None:
        self.description = description
        self.total = total
        self.done = 0
        self._stream = stream
        self._interval = interval
        self._started = self._last = time.monotonic()
        self._printed = False

    def update(self, done: int, total: int | None = None) -> None:
        """Set how much is done (and the total, when it became known)."""
        self.done = done
        if total is not None:
            self.total = total
        self._show()

    def advance(self, amount: int = 1) -> None:
        """Count ``amount`` more items done."""
        self.update(self.done + amount)

    def line(self) -> str:
        """Where the work stands, in one line."""
        elapsed = time.monotonic() - self._started
        if self.total:
            share = 100 * self.done / self.total
            return (
                f"{self.description}: {self.done:,}/{self.total:,} ({share:.0f}%), {elapsed:.0f} s"
            )
        return f"{self.description}: {self.done:,} done, {elapsed:.0f} s"

    def _show(self) -> None:
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._printed = True
            print(self.line(), file=self._stream, flush=True)

    def _close(self) -> None:
        if self._printed:
            print(self.line() + ", finished", file=self._stream, flush=True)


class _BarProgress(Progress):
    """The same, drawn as a rich progress bar on a terminal."""

    def __init__(
        self, description: str, *, total: int | None, stream: IO[str], interval: float
    ) -> None:
        super().__init__(description, total=total, stream=stream, interval=interval)
        self._bar = RichProgress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=stream),
            transient=True,
        )
        self._bar.start()
        self._task: TaskID = self._bar.add_task(description, total=total)

    def _show(self) -> None:
        self._bar.update(self._task, completed=self.done, total=self.total)

    def _close(self) -> None:
        self._bar.stop()


@contextmanager
def progress(
    description: str,
    *,
    total: int | None = None,
    stream: IO[str] | None = None,
    interval: float = 5.0,
    heartbeat: bool = False,
) -> Iterator[Progress]:
    """Report long work on ``stream`` (default stderr) while the block runs.

    On a terminal (and not under ``CI``) a rich progress bar; otherwise a plain line at most
    every ``interval`` seconds. Call ``update(done, total)`` or ``advance()`` on what it yields,
    or pass its ``update`` to library code as an ``on_progress`` callback. ``heartbeat`` keeps
    showing the elapsed time for work that reports nothing itself.
    """
    out = stream if stream is not None else sys.stderr
    kind = _BarProgress if interactive(out) else Progress
    reporter = kind(description, total=total, stream=out, interval=interval)
    stop = threading.Event()
    if heartbeat:

        def beat() -> None:
            while not stop.wait(min(1.0, interval)):
                reporter._show()

        threading.Thread(target=beat, name="progress-heartbeat", daemon=True).start()
    try:
        yield reporter
    finally:
        stop.set()
        reporter._close()

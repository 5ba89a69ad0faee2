"""Background learning in this process: a worker loop woken by new work, drained at exit.

The runner belongs to one machine. ``notify()`` wakes it (or starts it) after a turn enqueues
work; it processes items one at a time on the shared event loop and stops when nothing is left.
When the interpreter exits — a script that ran one turn and ended — it finishes what it can in a
short, bounded time and hands back whatever it still holds, so no item waits out a lease.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import weakref
from concurrent.futures import Future
from typing import Any

from .._sync import portal_loop, run_sync, submit
from ..db import CountWork, ReleaseWork
from ..exceptions import BackendError, LearningMachinesError, NotFoundError
from ._worker import Worker

__all__ = ["BackgroundRunner"]

logger = logging.getLogger("learning_machines")

_RUNNERS: weakref.WeakSet[BackgroundRunner] = weakref.WeakSet()


class BackgroundRunner:
    """Processes a machine's pending work in a background task of this process."""

    def __init__(self, *, worker: Worker, retry_backoff: float, drain_on_exit: float) -> None:
        self.worker = worker
        self.retry_backoff = retry_backoff
        self.drain_on_exit = drain_on_exit
        self.enabled = True
        self._lock = threading.Lock()
        self._wake: asyncio.Event | None = None
        self._woken = False
        self._running = False
        self._used = False
        self._future: Future[None] | None = None
        _RUNNERS.add(self)

    def notify(self) -> None:
        """New work was enqueued: wake the loop, or start it."""
        self._used = True
        if not self.enabled:
            return
        with self._lock:
            # Set under the lock the loop reads before it stops: a wake-up is never lost.
            self._woken = True
            if not self._running:
                self._running = True
                self._future = submit(self._loop())
                return
        self._wake_loop()

    @property
    def running(self) -> bool:
        """Whether the loop is running now."""
        return self._running

    def _wake_loop(self) -> None:
        wake = self._wake
        if wake is not None:
            portal_loop().call_soon_threadsafe(wake.set)

    async def _loop(self) -> None:
        self._wake = asyncio.Event()
        failures = 0
        db = self.worker.db
        try:
            while self.enabled:
                self._wake.clear()
                with self._lock:
                    self._woken = False
                try:
                    result = await self.worker.run_pending(limit=self.worker.settings.concurrency)
                    failures = 0
                except (BackendError, NotFoundError) as exc:
                    # The db is unreachable or closed: the work stays durable in it. Back off,
                    # and stop once closed; a later notify() starts a new loop.
                    if not self.enabled or db.closed:
                        return
                    failures += 1
                    logger.warning("learning worker: %s (attempt %d)", exc, failures)
                    if failures >= 5:
                        logger.error(
                            "background learning stopped after %d database errors; pending work "
                            "stays in the db (run learning-machines worker, or wait_idle())",
                            failures,
                        )
                        return
                    await asyncio.sleep(min(30.0, self.retry_backoff * 2**failures))
                    continue
                if result.done or result.failed:
                    continue
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=1.0)
                except TimeoutError:
                    pending = await db.arun(CountWork(statuses=("pending",)))
                    with self._lock:
                        if pending == 0 and not self._woken:
                            self._running = False
                            return
        finally:
            with self._lock:
                self._running = False

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop after the item in hand (waiting up to ``timeout`` s), then give back what it holds.

        Work not yet done stays pending in the db, for the next process or a worker command.
        """
        self.enabled = False
        future = self._future
        if future is not None and not future.done():
            self._wake_loop()
            try:
                future.result(timeout=timeout)
            except TimeoutError:
                future.cancel()
        self._release()

    def _release(self) -> None:
        db = self.worker.db
        if db.closed:
            return
        try:
            released = db.run(ReleaseWork(worker_id=self.worker.worker_id))
        except LearningMachinesError as exc:
            logger.warning("could not hand back pending work at shutdown: %s", exc)
            return
        if released:
            logger.info("handed back %d pending item(s) for another worker", released)

    async def _drain(self, timeout: float) -> None:
        """Process claimable work until none is left or ``timeout`` seconds passed."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                result = await asyncio.wait_for(self.worker.run_pending(limit=1), remaining)
            except TimeoutError:
                return
            if not (result.done or result.failed):
                return

    def at_exit(self) -> None:
        """Finish this process's learning in a bounded time, then hand back what is left."""
        if not self._used or self.worker.db.closed:
            return
        self.enabled = False
        future = self._future
        try:
            if future is not None and not future.done():
                self._wake_loop()
                try:
                    future.result(timeout=self.drain_on_exit)
                except TimeoutError:
                    future.cancel()
            if self.drain_on_exit > 0:
                run_sync(self._drain(self.drain_on_exit))
        except LearningMachinesError as exc:
            logger.warning("learning was not finished at exit: %s", exc)
        finally:
            self._release()


def _at_exit(*_: Any) -> None:
    for runner in list(_RUNNERS):
        runner.at_exit()


def _register_exit_hook() -> None:
    """Run :func:`_at_exit` while worker threads can still be used.

    ``atexit`` runs after the interpreter has shut down its thread pools, when ``to_thread``
    (every db call) fails. Hooks registered with ``threading`` run before that, in reverse order
    of registration, so the pool module is imported first and the hook registered after it.
    """
    import concurrent.futures.thread  # noqa: F401 - registers its own hook first

    register = getattr(threading, "_register_atexit", None)
    if callable(register):
        register(_at_exit)
    else:  # pragma: no cover - every supported Python has it
        atexit.register(_at_exit)


_register_exit_hook()

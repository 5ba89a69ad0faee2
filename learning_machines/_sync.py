"""Thin sync wrappers over async code (the core is written once, async).

Sync calls run their coroutine on one long-lived event loop in a daemon thread (the "portal"),
not on a fresh loop per call: model clients (httpx connection pools) stay bound to a single loop,
and background learning started by one call keeps running after that call returns.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, Concatenate, ParamSpec, TypeVar

__all__ = ["on_portal", "portal_loop", "run_sync", "submit", "sync_twin"]

T = TypeVar("T")
S = TypeVar("S")
P = ParamSpec("P")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def portal_loop() -> asyncio.AbstractEventLoop:
    """The shared background event loop (started on first use)."""
    global _loop, _thread
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                ready.set()
                loop.run_forever()

            thread = threading.Thread(target=serve, name="learning-machines-loop", daemon=True)
            thread.start()
            ready.wait()
            _loop, _thread = loop, thread
        return _loop


def submit(coro: Coroutine[Any, Any, T]) -> Future[T]:
    """Schedule ``coro`` on the portal loop without waiting for it."""
    return asyncio.run_coroutine_threadsafe(coro, portal_loop())


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code and return its result.

    Raises ``RuntimeError`` when called on the portal loop's own thread (that would deadlock):
    call the async method with ``await`` there instead.
    """
    if threading.current_thread() is _thread:
        coro.close()
        raise RuntimeError(
            "a sync Learning Machines method was called from inside its own event loop; "
            "await the async twin (arun, arecall, aprocess …) instead"
        )
    return submit(coro).result()


async def on_portal(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` run on the portal loop, from whichever event loop awaits it.

    For state that must live on one loop (an ``asyncio.Lock`` shared by the background runner
    and an application's own loop): awaited from another loop, the coroutine runs on the
    portal and its result (or exception, or cancellation) comes back.
    """
    if threading.current_thread() is _thread:
        return await coro
    return await asyncio.wrap_future(submit(coro))


def sync_twin(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[S, P], T]:
    """Make the sync twin of an async method, so it is written once.

    The twin takes the same arguments, runs the coroutine on the portal loop and returns its
    result; its name drops the leading ``a`` and its docstring points at the async method.
    """

    @functools.wraps(method)
    def twin(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return run_sync(method(self, *args, **kwargs))

    name = method.__name__
    twin.__name__ = twin.__qualname__ = name[1:] if name.startswith("a") else name
    first = (method.__doc__ or "").strip().splitlines()
    twin.__doc__ = f"Sync :meth:`{name}`" + (f": {first[0]}" if first else ".")
    return twin

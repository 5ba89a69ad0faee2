"""Thin sync wrappers over async code (the core is written once, async)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code and return its result.

    Outside an event loop this is ``asyncio.run``. Inside one (a sync method called from async
    code, or from a notebook) the coroutine runs on a fresh loop in a helper thread, so the caller's
    loop is never re-entered.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: list[T] = []
    error: list[BaseException] = []
    ctx = contextvars.copy_context()

    def target() -> None:
        try:
            result.append(ctx.run(asyncio.run, coro))
        except BaseException as exc:  # re-raised in the caller's thread below
            error.append(exc)

    thread = threading.Thread(target=target, name="learning-machines-sync", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]

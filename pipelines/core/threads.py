"""Threads beside an ingest's own (a large input's hash, the solids taken to CRS84, the
removal of replaced runs), in pools that a forked child makes again: a child has none of its
parent's threads, and a pool it inherited would queue the child's work for a thread that is
not there (the child's ingest waiting for it for ever)."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["Threads"]

T = TypeVar("T")


class Threads:
    """A pool of `workers` threads named `name`, made again in a forked child."""

    def __init__(self, workers: int, name: str) -> None:
        self._workers, self._name = workers, name
        self._start()
        os.register_at_fork(after_in_child=self._start)

    def _start(self) -> None:
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix=self._name)

    def submit(self, function: Callable[..., T], /, *args: Any) -> Future[T]:
        """`function(*args)` on one of the threads; at once, here, where no thread takes
        it: the interpreter is exiting (an ingest in an atexit hook) or has no thread left
        to start."""
        try:
            return self._pool.submit(function, *args)
        except RuntimeError:
            done: Future[T] = Future()
            try:
                done.set_result(function(*args))
            except Exception as e:  # noqa: BLE001 - the caller's to see, as from a thread
                done.set_exception(e)
            return done

"""The pools of threads beside an ingest's own (threads.Threads): work runs on a thread of the
pool, its error is raised where its result is asked, a forked child gets threads of its own,
and where no thread takes work (the interpreter exiting) it runs at once in the caller."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from citypipe.core.threads import Threads


def _name() -> str:
    return threading.current_thread().name


def _fails() -> None:
    raise ValueError("the work's own error")


def test_work_runs_on_a_thread_of_the_pool_and_its_error_reaches_the_caller() -> None:
    pool = Threads(1, "test-threads")
    assert pool.submit(_name).result().startswith("test-threads")
    with pytest.raises(ValueError, match="the work's own error"):
        pool.submit(_fails).result()


def test_where_no_thread_takes_work_it_runs_at_once_here() -> None:
    pool = Threads(1, "test-threads")
    pool.submit(_name).result()
    pool._pool.shutdown()  # as at the interpreter's exit: submit refuses work
    done = pool.submit(_name)
    assert done.done() and done.result() == _name()
    with pytest.raises(ValueError, match="the work's own error"):
        pool.submit(_fails).result()


def test_a_forked_child_has_threads_of_its_own() -> None:
    """The parent's pool has started its thread (now idle): a child forked then, which has no
    thread of its parent's, still gets its work done."""
    pool = Threads(1, "test-threads")
    assert pool.submit(_name).result().startswith("test-threads")
    pid = os.fork()
    if pid == 0:
        signal.alarm(20)  # work that never runs ends the child
        code = 1
        try:
            code = 0 if pool.submit(_name).result().startswith("test-threads") else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

"""Progress of long work (ingest, harvest, export): a bar on a terminal, else a log line every
`CITYPIPE_PROGRESS_SECONDS` (10 s; 0 turns the lines off), which Dagster's assets send to
their run's log.

The work only adds to plain counters of a `Task` (`task.add("records", n)`, per batch); a
daemon thread reads them, with the probes that ask how far the input was read, and draws the
bar (tqdm, on stderr) or writes the line. Work without a terminal thus costs one addition per
batch, and a thread that wakes once per interval; output on stdout is never touched.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tqdm import tqdm

from citypipe.connectors.base import Connector, FileConnector, ServiceConnector

__all__ = ["SILENT", "Reporter", "Task", "source_task"]

BYTES = "bytes "
"""Quantities whose label starts so (bytes read, bytes written) are shown as sizes."""
_BAR_REFRESH = 0.25


def _interval() -> float:
    return float(os.environ.get("CITYPIPE_PROGRESS_SECONDS") or 10)


class Task:
    """What one piece of work has done so far: counters the work adds to, and probes (how far
    a file was read, pages received) read only when the progress is shown."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.phase: str | None = None
        """What the work does now, where it has steps (`writing`)."""
        self.counts: dict[str, int] = {}
        self.totals: dict[str, int] = {}
        self._probes: dict[str, Callable[[], int | None]] = {}
        self._seen: dict[str, int] = {}

    def add(self, what: str, n: int) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    def total(self, what: str, n: int) -> None:
        """The count `what` reaches when the work is done, where known."""
        self.totals[what] = n

    def probe(self, what: str, read: Callable[[], int | None], total: int | None = None) -> None:
        self._probes[what] = read
        self._seen[what] = 0
        if total is not None:
            self.total(what, total)

    def finished(self, phase: str | None = None) -> None:
        """The work (or its reading, before the `phase` that follows) ended well: what was
        probed reached its total (a reader that does not tell its position, such as pyarrow's
        of a GeoParquet file, would otherwise show none)."""
        self.phase = phase
        for what in self._probes:
            if what in self.totals:
                self._seen[what] = self.totals[what]

    def now(self) -> list[tuple[str, int, int | None]]:
        """Each quantity with its total: the probed ones first, a probe's highest value kept
        (a probe that says nothing now keeps what it said)."""
        for what, read in self._probes.items():
            value = read()
            if value is not None:
                self._seen[what] = max(value, self._seen.get(what, 0))
        values = {**self._seen, **self.counts}
        return [(what, n, self.totals.get(what)) for what, n in values.items()]

    @property
    def title(self) -> str:
        return f"{self.name} ({self.phase})" if self.phase else self.name

    def line(self, seconds: float) -> str:
        """The state as one line of a log: `ingest x: 3.1MB of 9.5MB read (33 %), ...`."""
        parts = []
        for what, n, total in self.now():
            share = f" of {_amount(what, total)}" if total else ""
            percent = f" ({n * 100 // total} %)" if total else ""
            parts.append(f"{_amount(what, n)}{share} {what.removeprefix(BYTES)}{percent}")
        return f"{self.title}: {', '.join(parts) or 'started'}; {seconds:.0f} s"


def _amount(what: str, n: int) -> str:
    return tqdm.format_sizeof(n, "B", 1024) if what.startswith(BYTES) else f"{n:,}"


@dataclass(frozen=True)
class Reporter:
    """Where progress goes: a bar when `bar` (by default: stderr is a terminal), else a line
    to `log` (by default stderr) every `interval` seconds; nothing when both are off. `summary`:
    the last line is written even for work shorter than one interval (a run log that shows every
    ingest's counts, where a terminal would only fill up with them)."""

    log: Callable[[str], None] | None = None
    interval: float = field(default_factory=_interval)
    bar: bool = field(default_factory=lambda: sys.stderr.isatty())
    summary: bool = False

    @contextmanager
    def track(self, task: Task) -> Iterator[Task]:
        """Show `task` while the block runs; the bar is closed (left at its last state) or a
        last line written, where any line was, when the block ends."""
        if not self.bar and self.interval <= 0:
            yield task
            return
        stop = threading.Event()
        show = (
            _Bar(task)
            if self.bar
            else _Lines(task, self.log or _stderr, self.interval, shown=self.summary)
        )
        thread = threading.Thread(target=show.run, args=(stop,), name="progress", daemon=True)
        thread.start()
        try:
            yield task
            task.finished()
        finally:
            stop.set()
            thread.join()
            show.close()


SILENT = Reporter(interval=0, bar=False)
"""No progress: what a library call gets unless it asks."""


def _stderr(text: str) -> None:
    print(f"citypipe: {text}", file=sys.stderr, flush=True)


class _Lines:
    def __init__(
        self, task: Task, log: Callable[[str], None], interval: float, *, shown: bool
    ) -> None:
        self.task, self.log, self.interval = task, log, interval
        self.start = time.monotonic()
        self.shown = shown
        """Whether the closing line is due: a line was written, or a summary is asked for."""

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            self.log(self.task.line(time.monotonic() - self.start))
            self.shown = True

    def close(self) -> None:
        if self.shown:
            self.log(self.task.line(time.monotonic() - self.start))


class _Bar:
    """A tqdm bar of the first quantity with a total (else of the first), the others beside."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.bar = tqdm(desc=task.name, file=sys.stderr, dynamic_ncols=True, leave=True)
        self.main: str | None = None

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(_BAR_REFRESH):
            self.draw()

    def draw(self) -> None:
        quantities = self.task.now()
        if not quantities:
            return
        what, n, total = next((q for q in quantities if q[2]), quantities[0])
        if what != self.main:  # a new phase (an export's writing after its reading)
            self.main = what
            self.bar.reset(total=total)
            size = what.startswith(BYTES)
            self.bar.unit = "B" if size else f" {what}"
            self.bar.unit_scale, self.bar.unit_divisor = size, 1024
        self.bar.set_description_str(self.task.title, refresh=False)
        self.bar.n = n
        others = [f"{_amount(w, v)} {w.removeprefix(BYTES)}" for w, v, _ in quantities if w != what]
        self.bar.set_postfix_str(", ".join(others), refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.draw()
        self.bar.close()


def source_task(name: str, connector: Connector) -> Task:
    """The task of reading `connector`'s source: records (the caller counts them), and bytes
    of the file read of its size, or pages and bytes received from a service."""
    task = Task(name)
    if isinstance(connector, ServiceConnector):
        traffic = connector.client.traffic
        task.probe("pages", lambda: traffic.pages)
        task.probe("bytes received", lambda: traffic.bytes)
    elif isinstance(connector, FileConnector) and connector.path.is_file():
        task.probe("bytes read", connector.bytes_read, total=connector.path.stat().st_size)
    task.add("records", 0)
    return task

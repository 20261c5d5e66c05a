"""Where a large CityGML file's split read spends its CPU, process by process, thread by thread.

A file read in two processes (on two cores this process walks the first range and a child the
rest, connectors/citygml_ranges.py; one child walks the whole where the members do not stand
alone, connectors/citygml_process.py) is as fast as its busier side, and whole-process timings
do not tell which side that is, nor how long the harmonising process works alone after the
reading child has ended (the spatial order's sort and write: the tail, printed with the CPU
each of this process's threads spent in it). One ingest, its
threads' user and system time read from Linux's /proc every 50 ms (a thread that ends between two
samples loses at most that; every 20 ms, the sampling took 1.1 s of CPU of an 83 s ingest at a
load of 31: its thread is listed as `sampler`), the reader forced to split (`split_bytes` 1)
unless told otherwise. `--timeline` prints each process's events as they came (a batch walked,
spooled, read back here, a chunk claimed here, a wait for a child's batch, the sort and write),
with the wall time and the thread's CPU since its previous one.

    python bench/split_cpu.py FILE [--option split_bytes=0] [--timeline]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _thread_times(pid: int) -> dict[int, tuple[float, float]]:
    """User and system CPU seconds of each thread of process `pid` ({} once it has ended)."""
    times = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return {}
    for tid in tids:
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold blanks
        times[int(tid)] = (int(fields[11]) / _TICK, int(fields[12]) / _TICK)
    return times


class _Sampler:
    """Every thread of this process and its children, as last seen, and when each child was."""

    def __init__(self) -> None:
        self.seen: dict[tuple[int, int], tuple[float, float]] = {}
        self.last: dict[int, float] = {}
        self.with_children: dict[int, tuple[float, float]] = {}
        """This process's threads as last seen while a child was still there."""
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._done.wait(0.05):
            kids = Path(f"/proc/{me}/task/{me}/children").read_text().split()
            for pid in [me, *map(int, kids)]:
                for tid, times in _thread_times(pid).items():
                    self.seen[(pid, tid)] = times
                if pid != me:
                    self.last[pid] = time.perf_counter()
            if kids:
                self.with_children = {t: v for (p, t), v in self.seen.items() if p == me}

    def __enter__(self) -> Self:
        self.before = _thread_times(os.getpid())
        self._thread.start()
        self.native_id = self._thread.native_id
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        me = os.getpid()
        for tid, times in _thread_times(me).items():
            self.seen[(me, tid)] = times
        self.tail = {  # each thread of this process, once no child was left
            tid: sum(times) - sum(self.with_children.get(tid, (0.0, 0.0)))
            for (pid, tid), times in self.seen.items()
            if pid == me and self.last
        }
        for (pid, tid), (user, system) in list(self.seen.items()):
            u0, s0 = self.before.get(tid, (0.0, 0.0)) if pid == me else (0.0, 0.0)
            self.seen[(pid, tid)] = (user - u0, system - s0)


class _Timeline:
    """Events of the ingest's processes in a file each appends to (a forked child too)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND)

    def event(self, what: str) -> None:
        line = f"{os.getpid()} {time.perf_counter():.4f} {time.thread_time():.4f} {what}\n"
        os.write(self._fd, line.encode())

    def around(self, owner: object, name: str, what: str) -> None:
        """Events before and after each call of `owner.name`."""
        function = getattr(owner, name)

        def timed(*args: object, **kwargs: object) -> object:
            self.event(f"{what} <")
            try:
                return function(*args, **kwargs)
            finally:
                self.event(f"{what} >")

        setattr(owner, name, timed)

    def after_each(self, owner: object, name: str, what: str) -> None:
        """An event after each item the generator function `owner.name` yields."""
        function = getattr(owner, name)

        def timed(*args: object) -> Iterator[object]:
            for item in function(*args):
                self.event(what)
                yield item

        setattr(owner, name, timed)

    def show(self, start: float) -> None:
        """Each event: seconds into the ingest, the process, the wall and thread CPU seconds
        since its process's previous event (CPU from the thread's start at its first)."""
        me, last = os.getpid(), {}
        for line in self.path.read_text().splitlines():
            pid, wall, cpu, what = line.split(" ", 3)
            side = "parent" if int(pid) == me else f"child {pid}"
            w0, c0 = last.get(side, (start, 0.0))
            w, c = float(wall), float(cpu)
            print(f"{w - start:7.3f} {side:12} {what:26} +{w - w0:6.3f} s, CPU +{c - c0:6.3f}")
            last[side] = (w, c)


def _watch(timeline: _Timeline) -> None:
    from citypipe.connectors import citygml_ranges
    from citypipe.core import order

    timeline.after_each(citygml_ranges, "take", "batch walked")
    timeline.around(citygml_ranges, "_spool", "batch spooled")
    timeline.around(citygml_ranges, "read_back", "batch read back")
    timeline.around(citygml_ranges._Stolen, "_walk", "chunk claimed and walked")
    timeline.around(citygml_ranges, "self_contained", "range scanned")
    timeline.around(order.OrderedWriter, "close", "sorted and written")
    received = citygml_ranges.received

    def waited(*args: object) -> Iterator[object]:
        messages = received(*args)
        while True:
            timeline.event("waiting for a child <")
            item = next(messages, waited)
            timeline.event("waiting for a child >")
            if item is waited:
                return
            yield item

    citygml_ranges.received = waited


def main() -> None:
    from citypipe.core.ingest import ingest  # imported before timing, as bench/run.py does
    from citypipe.core.lake import Lake

    p = argparse.ArgumentParser()
    p.add_argument("file", type=Path)
    p.add_argument("--option", action="append", default=["split_bytes=1"], metavar="KEY=VALUE")
    p.add_argument("--timeline", action="store_true")
    args = p.parse_args()
    options = dict(o.split("=", 1) for o in args.option)
    with tempfile.TemporaryDirectory(prefix="citypipe-bench-") as out, _Sampler() as sampler:
        timeline = _Timeline(Path(out).with_suffix(".timeline")) if args.timeline else None
        if timeline:
            _watch(timeline)
        start = time.perf_counter()
        ingest(args.file, "bench", Lake(Path(out)), validate=False, options=options)
        wall = time.perf_counter() - start
        names = {t.native_id: t.name for t in threading.enumerate()}
        if timeline:
            timeline.show(start)
            timeline.path.unlink()
    me = os.getpid()
    print(f"wall {wall:.2f} s, load {os.getloadavg()[0]:.1f}")
    for pid, last in sampler.last.items():
        print(f"child {pid} last seen {last - start:.2f} s into the ingest")
    if sampler.tail:
        others = sum(v for tid, v in sampler.tail.items() if tid not in (me, sampler.native_id))
        print(
            f"after the last child: {start + wall - max(sampler.last.values()):.2f} s, this "
            f"process's main thread {sampler.tail.get(me, 0.0):.2f} s of CPU, "
            f"its others {others:.2f}"
        )
    for (pid, tid), (user, system) in sorted(sampler.seen.items()):
        if user + system >= 0.01:
            who = "parent" if pid == me else f"child {pid}"
            name = (names.get(tid) if pid == me else None) or ("main" if tid == pid else "thread")
            print(f"{who:12} {tid:8} {name:24} user {user:6.2f} sys {system:5.2f}")


if __name__ == "__main__":
    main()

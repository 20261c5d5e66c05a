"""The listener's write-ahead log: notifications made durable before they are acknowledged.

Each notification is appended to the open segment file and synced to disk before its request
is answered, so a listener killed at any moment (kill -9, power) has lost nothing it
acknowledged. Requests arriving together share one fsync (group commit): the rate is bounded by
the disk's sync latency divided among the requests waiting, not one sync per notification.
Segments are closed by `rotate`, ingested by the listener and only then removed. A line torn
by a kill in the middle of its write was never acknowledged (its sync never returned): opening
the log cuts it off, so the next run reads whole notifications only.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import BinaryIO

__all__ = ["NotificationLog"]

SUFFIX = ".jsonl"


class NotificationLog:
    """Numbered segment files of JSON lines in `folder`; the highest is open for appends."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._lock = threading.Lock()  # the open file: writes, flushes, rotation
        self._syncing = threading.Lock()  # one fsync at a time; the others wait and share it
        self._written = self._synced = 0
        self.appended = 0
        """Notifications appended since the last rotation."""
        for segment in self.segments():
            _cut_torn_tail(segment)
        self._file = self._open(max((self._number(p) for p in self.segments()), default=0) + 1)

    def segments(self) -> list[Path]:
        """Every segment file, the oldest first (the open one last)."""
        return sorted(self.folder.glob(f"*{SUFFIX}"), key=self._number)

    @staticmethod
    def _number(path: Path) -> int:
        return int(path.stem)

    def _open(self, number: int) -> BinaryIO:
        self._path = self.folder / f"{number:012d}{SUFFIX}"
        return open(self._path, "ab")

    def append(self, line: bytes) -> None:
        """Write one line (a notification, no newline in it) and return once it is on disk."""
        with self._lock:
            self._file.write(line + b"\n")
            self._written += 1
            self.appended += 1
            mine = self._written
        with self._syncing:
            if self._synced >= mine:  # a sync that began after our write covered it
                return
            with self._lock:
                self._file.flush()
                upto, file = self._written, self._file
            os.fsync(file.fileno())
            self._synced = upto

    def rotate(self) -> list[Path]:
        """Close the open segment and start a new one; the closed segments (those of earlier
        runs of the listener too), the oldest first."""
        with self._syncing, self._lock:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            if self._path.stat().st_size == 0:
                self._path.unlink()
            self._synced = self._written
            self.appended = 0
            self._file = self._open(self._number(self._path) + 1)
        return [p for p in self.segments() if p != self._path]

    def close(self) -> None:
        with self._syncing, self._lock:
            self._file.close()
            if self._path.stat().st_size == 0:
                self._path.unlink()


def _cut_torn_tail(path: Path) -> None:
    """Truncate `path` after its last newline: what follows is a line a kill tore mid-write."""
    with open(path, "r+b") as f:
        size = end = f.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            newline = f.read(end - start).rfind(b"\n")
            if newline >= 0:
                end = start + newline + 1
                break
            end = start
        if end < size:
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())

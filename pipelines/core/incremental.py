"""Whether a source's input changed since the run that landed last: `citypipe run` and the
Dagster assets skip a source whose file and settings are those of that run.

The fingerprint is the SHA-256 of the file's bytes, of the ingest's settings (format, CRS,
fields, options ...), of the shared schema file and of citypipe's version; it is kept in the
footer of the landed features file with the run's check results, so a skipped run can report
what the landed one found. A service has no bytes to compare before it is asked: it is always
harvested. Touching a file without changing it changes nothing; code changed without a new
version is not seen (`citypipe run --force`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import asdict
from functools import cache, partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import orjson

from citypipe import schemas
from citypipe.connectors.registry import is_url
from citypipe.core.checks import CheckResult
from citypipe.core.lake import RUN_KEY, Lake
from citypipe.core.threads import Threads

__all__ = [
    "CHECKS_KEY",
    "FINGERPRINT_KEY",
    "Landed",
    "checks_json",
    "citypipe_version",
    "file_digest",
    "fingerprint",
    "landed",
    "record_file_digest",
]  # fmt: skip

FINGERPRINT_KEY = "citypipe:fingerprint"
CHECKS_KEY = "citypipe:checks"
HASHED_BESIDE = 32 << 20
"""Files from this size are hashed in a thread beside their read; a smaller one at once, where
the thread's hand-offs cost more CPU than the hash it hides (Karlsruhe's 268 kB: 1.3 ms more
of the process's CPU, no wall time saved, 40 ingests alternated in one process)."""
READ_WHOLE = 512 << 10
"""Files up to this size are hashed from one read of their bytes, not through hashlib's
256 kB buffer, which it makes and zeroes at each call: inside ingests (old and new alternated,
40 each, min / median, load 8) a one-feature GeoJSON's fingerprint 0.21 / 0.25 -> 0.16 / 0.20
ms, Karlsruhe's 268 kB 0.38 / 0.46 -> 0.36 / 0.42; files of 600-750 kB (Barcelona's
districtes and fountains, Melbourne) gained nothing, their bytes a fresh allocation as large."""
_HASHING = Threads(2, "fingerprint")


@cache
def citypipe_version() -> str:
    """The installed version, looked up once: reading the package's metadata costs about
    2 ms, paid by every ingest before (the fixed cost of a small file)."""
    try:
        return version("citypipe")
    except PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown"


def fingerprint(location: Path | str, settings: Mapping[str, Any]) -> Callable[[], str | None]:
    """The fingerprint of ingesting `location` with `settings`, when asked for: None for a
    service, or for a file that cannot be read (the connector says why). A file from
    `HASHED_BESIDE` bytes is hashed in a thread while the caller reads it: hashlib hashes
    without the GIL, so its SHA-256 costs the run's own thread nothing (the 422 MB file's
    0.2-0.6 s); a smaller one when first asked, in the caller's thread: an ingest asks once
    its features are being encoded on their own (`OrderedWriter.seal`). `skip_unchanged`
    asks at once, and an orchestrated snapshot carries a recorded digest."""
    if is_url(str(location)):
        return lambda: None
    path = Path(location)
    try:
        st = os.stat(path)  # here, before the connector opens the file
    except OSError:  # not a file: the connector says why
        return lambda: None
    if st.st_size < HASHED_BESIDE:
        return cache(partial(_digest, path, st, settings))
    return _HASHING.submit(_digest, path, st, settings).result


def _digest(path: Path, st: os.stat_result, settings: Mapping[str, Any]) -> str | None:
    """None where the file at `path` is no longer the one `st` saw before the read (replaced or
    written since): the bytes hashed may not be those read, and a fingerprint kept for them
    would call the next run's file unchanged."""
    try:
        sha256 = file_digest(path, st)
        if _identity(os.stat(path)) != _identity(st):
            return None
    except OSError:  # not a readable file: the connector says why
        return None
    return settings_digest(sha256, settings)


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_ino, st.st_size, st.st_mtime_ns


def settings_digest(what: str, settings: Mapping[str, Any]) -> str:
    """The SHA-256 of `what` is read (a file's digest, a service's address), of how (the
    settings), of the shared schema and of citypipe's version: whatever changes the output."""
    digest = hashlib.sha256(what.encode())
    digest.update(orjson.dumps(settings, option=orjson.OPT_SORT_KEYS, default=str))
    digest.update(schemas.feature_schema_bytes())
    digest.update(citypipe_version().encode())
    return digest.hexdigest()


def _digest_record(path: Path) -> Path:
    return path.with_name(f".{path.name}.sha256")


def record_file_digest(path: Path, sha256: str) -> None:
    """Keep the SHA-256 of the file just written at `path` beside it, with its size and
    modification time, so that `file_digest` does not read the file again (a raw snapshot:
    hashed while copied, then fingerprinted by the ingest, in another step)."""
    st = os.stat(path)
    record = _digest_record(path)
    tmp = record.with_name(f"{record.name}.tmp")
    tmp.write_text(f"{sha256} {st.st_size} {st.st_mtime_ns}\n", encoding="ascii")
    os.replace(tmp, record)


def file_digest(path: Path, st: os.stat_result | None = None) -> str:
    """The SHA-256 of the file's bytes: the recorded one where the file's size and modification
    time (to the nanosecond; `st`, else the file's now) are still those recorded with it, else
    read from the file."""
    with suppress(OSError, ValueError):
        sha256, size, mtime = _digest_record(path).read_text(encoding="ascii").split()
        st = st or os.stat(path)
        if (int(size), int(mtime)) == (st.st_size, st.st_mtime_ns):
            return sha256
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size <= READ_WHOLE:
            return hashlib.sha256(f.read()).hexdigest()
        # larger ones into one reused buffer: 1 MB reads cost a third more
        return hashlib.file_digest(f, "sha256").hexdigest()


def checks_json(checks: list[CheckResult]) -> bytes:
    return orjson.dumps([asdict(c) for c in checks])


class Landed:
    """What the footer of a source's landed features file says of its run."""

    def __init__(self, metadata: Mapping[bytes, bytes]) -> None:
        self.metadata = metadata
        self.fingerprint = metadata.get(FINGERPRINT_KEY.encode(), b"").decode() or None
        self.run: dict[str, Any] = orjson.loads(metadata.get(RUN_KEY.encode(), b"{}"))
        self.checks = [
            CheckResult(**c) for c in orjson.loads(metadata.get(CHECKS_KEY.encode(), b"[]"))
        ]


def landed(lake: Lake, source: str) -> Landed | None:
    """The landed run of `source` (or of one partition of it, `partitions.unit`), None where
    none landed (or its file cannot be read)."""
    footer = lake.footer("features", source)
    return None if footer is None else Landed(footer)

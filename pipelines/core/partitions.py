"""A source split into partitions: one tile file each, landed, fingerprinted and re-run alone.

A catalog entry whose `path:` is a glob (`tiles/*.gml`), or that lists `tiles:`, is partitioned
by file: a partition's key is its file's name without the suffix, in the characters of a source
name (`LoD2_32_326_5727_1_NW`). In the lake a partition is a unit of its own, `<NAME>~<KEY>`
(`~` is never in a source name, so no unit can be taken for a source): its runs, lock, staging,
attempts and quarantine are the unit's, so it commits in one rename as a source does and its
fingerprint is its own. Its files are linked into the source's folders as `<KEY>.parquet`:

    <lake>/features/<NAME>/<KEY>.parquet -> ../../.runs/<NAME>~<KEY>/current/features.parquet

so every reader takes `features/<NAME>/` as one dataset of all the tiles, and a run of one tile
replaces that tile's link target and leaves every other file as it was.

A service of observations can be partitioned by time instead (`partitions: {daily: START}`):
a partition per UTC day from START to yesterday (today's is not whole yet), keyed `YYYY-MM-DD`,
each asking the service for its day alone (`day_window`) and landing as `<NAME>~<YYYY-MM-DD>`
the same way.
"""

from __future__ import annotations

import glob
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from citypipe.geo.errors import ConfigurationError

__all__ = [
    "DAY",
    "SEPARATOR",
    "chosen",
    "day_window",
    "days",
    "is_glob",
    "key_of",
    "split",
    "tile_files",
    "unit",
]

SEPARATOR = "~"
DAY = "%Y-%m-%d"
"""A day partition's key (Dagster's DailyPartitionsDefinition's own format)."""
RANGE = ".."
_NOT_KEY = re.compile(r"[^A-Za-z0-9_.-]+")


def is_glob(path: Path | str) -> bool:
    return glob.has_magic(str(path))


def key_of(path: Path) -> str:
    """A tile's partition key: its file name without the suffix(es), other characters as `_`."""
    name = path.name
    for suffix in (".gz", ".json", ".gml", ".xml", ".jsonl", ".city"):
        name = name.removesuffix(suffix)
    return _NOT_KEY.sub("_", name).strip("_.-") or "tile"


def tile_files(paths: list[Path]) -> dict[str, Path]:
    """Partition key -> file of `paths` (globs expanded, in sorted order); two files with one key
    are a catalog error, as is a glob that matches nothing."""
    tiles: dict[str, Path] = {}
    for path in paths:
        found = sorted(Path(p) for p in glob.glob(str(path))) if is_glob(path) else [path]
        if not found:
            raise ConfigurationError(f"{path}: no file matches")
        for file in found:
            key = key_of(file)
            if key in tiles and tiles[key] != file:
                raise ConfigurationError(
                    f"{tiles[key]} and {file} both give partition {key!r}; rename one"
                )
            tiles[key] = file
    return tiles


def unit(source: str, partition: str | None) -> str:
    """The lake's name for one partition of `source` (the source's own without one)."""
    return source if partition is None else f"{source}{SEPARATOR}{partition}"


def split(name: str) -> tuple[str, str | None]:
    """A lake unit's source and partition key (None for a whole source)."""
    source, sep, key = name.partition(SEPARATOR)
    return (source, key) if sep else (source, None)


def days(start: date, today: date | None = None) -> list[str]:
    """The keys of the whole UTC days from `start` to the day before `today` (default: now's)."""
    end = today or datetime.now(UTC).date()
    return [(start + timedelta(days=n)).strftime(DAY) for n in range((end - start).days)]


def day_window(key: str) -> str:
    """The RFC 3339 interval of day `key`, as a service's `datetime` (`Query.datetime`): its
    first instant to its last microsecond, so an OGC API server (which includes both ends) and
    an NGSI-LD broker (`timerel=between`, the end excluded) each give the day's values alone,
    never one of the next day's midnight."""
    return f"{key}T00:00:00Z/{key}T23:59:59.999999Z"


def chosen(source: str, asked: list[str], keys: list[str]) -> list[str]:
    """The partitions `asked` names, in order, among `keys` (a source's, in their order): each a
    key, or a range `FIRST..LAST` of them (`2026-11-01..2026-11-03`); an unknown one is a
    configuration error that says what the source has."""
    found: list[str] = []
    for item in asked:
        first, sep, last = item.partition(RANGE)
        span = keys[keys.index(first) : keys.index(last) + 1] if {first, last} <= set(keys) else []
        if sep and span and item not in keys:
            found += span
        elif item in keys:
            found.append(item)
        else:
            raise ConfigurationError(
                f"source {source!r} has no partition {item!r}; partitions: {_listed(keys)}"
            )
    return list(dict.fromkeys(found))


def _listed(keys: list[str]) -> str:
    """The keys as an error message lists them: all of a few, the first and last of many."""
    return ", ".join(keys) if len(keys) <= 10 else f"{keys[0]}{RANGE}{keys[-1]} ({len(keys)})"

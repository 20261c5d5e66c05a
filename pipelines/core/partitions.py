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
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

from citypipe.geo.errors import ConfigurationError

__all__ = ["SEPARATOR", "is_glob", "key_of", "split", "tile_files", "unit"]

SEPARATOR = "~"
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

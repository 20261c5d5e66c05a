"""What each column of a lake file costs to write, in bytes and CPU, and what other codecs would.

The batches a real ingest hands its GeoParquet writers (features, surfaces) are kept, then
each column is written alone by pyarrow with the options the lake's writer gives it (codec,
zstd level, dictionary, statistics, byte-stream-split), and again with each of the others
asked (`--codecs`: none, lz4_raw, snappy, zstd levels; `nostats`: no min/max statistics),
alternated in one process, the least thread CPU of `--repeat` (a column written alone pays a
file's fixed cost too, some 20 us: the same for each). Last, the columns the lake compresses
summed over every file, by their Arrow size in the first batch: what each option would save or
cost on the chunks of that size and under (zstd's fixed cost a chunk, write.TINY, against its
bytes).

    python bench/write_columns.py FILE ... [--repeat 20] [--codecs none,lz4_raw,zstd:1,zstd:3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from citypipe.core import write
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake


def captured(path: Path) -> list[tuple[write.GeoParquetWriter, list[Any]]]:
    """Each GeoParquet writer of an ingest of `path` that wrote rows, with its batches."""
    kept: list[tuple[write.GeoParquetWriter, list[Any]]] = []
    plain = write.GeoParquetWriter.write

    def keep(self: write.GeoParquetWriter, batch: Any) -> None:
        if not kept or kept[-1][0] is not self:
            kept.append((self, []))
        kept[-1][1].append(batch)
        plain(self, batch)

    write.GeoParquetWriter.write = keep
    try:
        with tempfile.TemporaryDirectory(prefix="citypipe-columns-") as lake:
            ingest(path, "columns", Lake(Path(lake)), validate=False, render_docs=False)
    finally:
        write.GeoParquetWriter.write = plain
    return [(w, b) for w, b in kept if any(x.num_rows for x in b)]


def options(writer: write.GeoParquetWriter, first: Any) -> dict[str, Any]:
    """The ParquetWriter options the lake's writer opens its file with."""
    size = writer.source_bytes if writer.source_bytes is not None else first.nbytes
    return {
        **write.COMPRESSION,
        **writer.table.parquet_options,
        **writer._compression(size >= write.SCHEMA_LEVELS_FROM, first),
    }


def _alone(column: str, given: dict[str, Any], variant: str) -> dict[str, Any]:
    """`given`'s options for the leaves of `column` only, changed as `variant` says."""
    own = {k: v for k, v in given["compression"].items() if k.partition(".")[0] == column}
    levels = {k: v for k, v in given["compression_level"].items() if k in own}
    lists = {
        k: [leaf for leaf in given[k] if leaf.partition(".")[0] == column] or False
        for k in ("use_dictionary", "write_statistics", "use_byte_stream_split")
    }
    if variant == "nostats":
        lists["write_statistics"] = False
    elif variant != "lake":
        codec, _, level = variant.partition(":")
        own = dict.fromkeys(own, codec)
        levels = dict.fromkeys(own, int(level)) if level else {}
    return {**given, **lists, "compression": own, "compression_level": levels}


def _once(batches: list[Any], schema: pa.Schema, given: dict[str, Any]) -> tuple[float, int]:
    """Thread CPU and bytes of one file of `batches` written with `given`."""
    sink = pa.BufferOutputStream()
    start = time.thread_time()
    writer = pq.ParquetWriter(sink, schema, store_schema=False, **given)
    for batch in batches:
        writer.write(batch)
    writer.close()
    return time.thread_time() - start, sink.getvalue().size


SIZES = (4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 62)
"""Arrow bytes of a column in the first batch under which the summary sums it."""


def _summary(spent: list[tuple[int, dict[str, tuple[float, int]]]], variants: list[str]) -> None:
    """Each option's CPU (ms) and bytes (kB) summed over the compressed columns under each
    size, with the lake's own first."""
    print(f"\ncompressed columns{'':8}" + "".join(f" {v + ' ms, kB':>21}" for v in variants))
    for size in SIZES:
        under = [s for raw, s in spent if raw < size]
        label = f"{len(under)} under {size >> 10} kB" if size < SIZES[-1] else f"{len(under)} all"
        sums = ((sum(s[v][0] for s in under), sum(s[v][1] for s in under)) for v in variants)
        print(f"{label:26}" + "".join(f"  {t * 1e3:9.3f} {b / 1e3:9.1f}" for t, b in sums))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--codecs", default="none,lz4_raw,zstd:1,zstd:3,nostats")
    args = p.parse_args()
    variants = ["lake", *args.codecs.split(",")]
    compressed: list[tuple[int, dict[str, tuple[float, int]]]] = []
    for path in args.files:
        for writer, batches in captured(path):
            given = options(writer, batches[0])
            rows = sum(b.num_rows for b in batches)
            print(f"\n{path.name} {writer.table.name}: {rows} rows, {len(batches)} row groups")
            print(f"{'column':16}" + "".join(f" {v + ' ms, kB':>21}" for v in variants))
            for field in writer.table.arrow:
                schema = pa.schema([field])
                columns = [b.select([field.name]) for b in batches]
                given_of = {v: _alone(field.name, given, v) for v in variants}
                spent = dict.fromkeys(variants, (float("inf"), 0))
                for _ in range(args.repeat):
                    for v in variants:
                        spent[v] = min(spent[v], _once(columns, schema, given_of[v]))
                print(
                    f"{field.name:16}"
                    + "".join(f"  {s * 1e3:9.3f} {b / 1e3:9.1f}" for s, b in spent.values())
                )
                if set(given_of["lake"]["compression"].values()) != {"none"}:
                    compressed.append((batches[0].column(field.name).nbytes, spent))
    _summary(compressed, variants)


if __name__ == "__main__":
    main()

"""The commands over the lake: sql, export, schema; and the options every command that
opens the lake shares."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["LAKE_HELP", "add_commands", "count", "lake_of"]

LAKE_HELP = "lake folder or s3://bucket/prefix (default: $CITYPIPE_LAKE or data/lake)"


def lake_of(args: argparse.Namespace) -> Any:
    """The lake `--lake` names: a folder or an object store."""
    from citypipe.core.object_lake import lake_at

    return lake_at(args.lake)


def count(text: str) -> int:
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number of rows")
    return n


def limit_options(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--timeout",
        help="seconds a query may run (default 60, or $CITYPIPE_SQL_SECONDS)",
    )
    s.add_argument(
        "--memory", help="memory a query may use, e.g. 4GB (default 2GB, or $CITYPIPE_SQL_MEMORY)"
    )


def _limits(args: argparse.Namespace) -> Any:
    from citypipe.core import warehouse

    given: dict[str, Any] = {}  # an option given wins over its variable, which is not read then
    if args.timeout is not None:
        given["seconds"] = warehouse.seconds_limit(args.timeout)
    if args.memory:
        given["memory"] = args.memory
    return warehouse.Limits(**given)


def cmd_sql(args: argparse.Namespace) -> int:
    from citypipe.core import results, warehouse

    with warehouse.stream(lake_of(args), args.sql, _limits(args)) as result:
        reader = result.to_arrow_reader(results.BATCH_ROWS)
        if args.format == "table":
            results.write_table(
                sys.stdout, reader, args.wkb, 100 if args.limit is None else args.limit
            )
        else:
            write = results.write_json if args.format == "json" else results.write_csv
            write(sys.stdout, reader, args.wkb, args.limit)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from citypipe.core import progress
    from citypipe.core.export import export, selection

    lake = lake_of(args)
    sql, layer = selection(lake, source=args.source, view=args.view, sql=args.sql)
    done = export(
        lake,
        sql,
        Path(args.dest),
        args.format,
        layer=args.layer or layer,
        geometry=args.geometry,
        crs=args.crs,
        force=args.force,
        limits=_limits(args),
        reporter=progress.Reporter(),
    )
    geometry = (
        f"{done.geometry} as {done.geometry_type}, {done.crs}" if done.geometry else "no geometry"
    )
    print(f"{done.path}: {done.rows} rows, {done.format}, {geometry}")
    for note in done.notes:
        print(f"note: {note}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from citypipe import schemas

    print(schemas.feature_schema().markdown())
    return 0


def add_commands(sub: Any) -> None:
    """sql, export and schema, on the parser's subcommands `sub`."""
    s = sub.add_parser("sql", help="read-only SQL on the warehouse (spatial functions loaded)")
    s.add_argument("sql")
    s.add_argument("--lake", help=LAKE_HELP)
    s.add_argument("--format", choices=["table", "csv", "json"], default="table")
    s.add_argument(
        "--limit",
        type=count,
        help="rows to print (table: default 100, then how many there were; "
        "csv and json: every row unless given)",
    )
    s.add_argument("--wkb", action="store_true", help="geometry as WKB bytes (hex), not WKT")
    limit_options(s)
    s.set_defaults(func=cmd_sql)

    s = sub.add_parser(
        "export", help="a source, a view or a query to GeoPackage, FlatGeobuf, GeoJSON or CSV"
    )
    s.add_argument(
        "dest", help="the file to write (its suffix names the format: .gpkg .fgb .geojson .csv)"
    )
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--source", help="the features of this source")
    what.add_argument("--view", help="a warehouse view (features, buildings, rejects, ...)")
    what.add_argument("--sql", help="a read-only query, run as citypipe sql runs it")
    s.add_argument("--format", help="gpkg, fgb, geojson or csv, whatever the suffix")
    s.add_argument("--layer", help="layer name (default: the source, the view, or the file name)")
    s.add_argument(
        "--geometry",
        help="the GEOMETRY column of the layer (default: geometry); others become WKT text",
    )
    s.add_argument(
        "--crs", help="the CRS of a query's geometry that carries none (e.g. EPSG:25832)"
    )
    s.add_argument("--force", action="store_true", help="replace the file if it exists")
    s.add_argument("--lake", help=LAKE_HELP)
    limit_options(s)
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("schema", help="print shared schema v1 as a Markdown table")
    s.set_defaults(func=cmd_schema)

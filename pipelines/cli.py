"""The `citypipe` command: ingest, inspect, sql, export, run, listen, new-connector, schema.

Errors a user can act on are printed as one line naming the input and the reason, with exit
code 2; nothing prints a traceback unless CITYPIPE_DEBUG is set.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

__all__ = ["main"]


def _lake(args: argparse.Namespace) -> Any:
    from citypipe.core.object_lake import lake_at

    return lake_at(args.lake)


def cmd_ingest(args: argparse.Namespace) -> int:
    from citypipe.core import progress, warehouse
    from citypipe.core.ingest import ingest
    from citypipe.core.results import render_table
    from citypipe.geo.errors import CitypipeError

    lake = _lake(args)
    query = _query(args)
    try:
        report = ingest(
            args.path,
            args.source,
            lake,
            format=args.format,
            crs=None if query else args.crs,
            axis_order=args.axis_order,
            theme=args.theme,
            options={"query": query} if query else None,
            changes_only=args.incremental,
            reporter=progress.Reporter(),
        )
    except CitypipeError as e:  # the attempt is shown too: its record and quarantined rejects
        if lake.root.is_dir():
            try:
                warehouse.refresh(lake)
            except CitypipeError as also:
                e.add_note(str(also))
        raise
    warehouse.refresh(lake)
    checks = f"{report.checks_passed}/{len(report.checks)}"
    print(
        render_table(
            ["source", "format", "records", "features", "rejects", "checks passed", "seconds"],
            [
                [
                    report.source,
                    report.format,
                    report.records,
                    report.features,
                    report.rejects,
                    checks,
                    report.seconds,
                ]
            ],
        )
    )
    if report.since is not None:
        print(
            f"incremental: {report.records} records changed since {report.since}, "
            f"{report.carried} features kept from the last harvest"
        )
    if report.observations:
        print(f"observations stored: {report.observations} (new: those the lake held are not)")
    if report.violations.violating:
        print(
            f"schema violations: {report.violations.violating} of {report.features} features "
            "(listed in their properties, citypipe:schema_violations)"
        )
    for reason, n in report.reasons.most_common(5):
        print(f"rejected {n}: {reason}")
    for warning, n in report.warnings.most_common(5):
        print(f"warning, {n} features: {warning}")
    for c in report.checks:
        if not c.passed:
            print(f"check failed: {c.name}: {c.description}")
    return 0


def cmd_listen(args: argparse.Namespace) -> int:
    import signal
    import threading

    from citypipe.core.lake import check_source_name
    from citypipe.core.listener import Listener
    from citypipe.geo.errors import ConfigurationError

    lake = _lake(args)
    listener = Listener(
        lake, check_source_name(args.source), interval=args.interval, batch=args.batch
    )
    try:
        server = listener.serve(args.host, args.port)
    except OSError as e:
        raise ConfigurationError(f"cannot listen on {args.host}:{args.port}: {e}") from e
    threading.Thread(target=listener.run_flusher, name="flusher", daemon=True).start()
    # SIGTERM (a service manager, Dagster) stops as Ctrl-C does: what waits is landed first
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    host, port = str(server.server_address[0]), int(server.server_address[1])
    print(
        f"listening on http://{host}:{port}/ for notifications to source {args.source}, "
        f"landed every {args.interval:g} s in {lake.root}",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        listener.stop()
    print(f"stopped: {listener.flushes.notifications} notifications landed", flush=True)
    return 0


def cmd_new_connector(args: argparse.Namespace) -> int:
    from citypipe.sdk.scaffold import scaffold

    target = scaffold(args.name, Path(args.dest))
    print(f"wrote {target}: edit {target}/citypipe_*/connector.py, then")
    print(f"  cd {target} && pip install -e . && pytest tests")
    return 0


def _query(args: argparse.Namespace) -> Any:
    """The service query of `ingest URL`'s flags (None for a file, which takes none of them;
    for a URL `--crs` is the CRS to ask the server for)."""
    from citypipe.connectors.registry import is_url
    from citypipe.core.catalog import SERVICE_KEYS, query_of
    from citypipe.geo.errors import ConfigurationError

    given = [f for f in SERVICE_KEYS if getattr(args, f) is not None]
    if not is_url(args.path):
        if given:
            flags = ", ".join("--" + f.replace("_", "-") for f in given)
            raise ConfigurationError(f"{args.path}: {flags} apply to a service's URL, not a file")
        return None
    return query_of(args)


def _bbox(text: str) -> tuple[float, float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or not (values[0] <= values[2] and values[1] <= values[3]):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not lon_min,lat_min,lon_max,lat_max (OGC:CRS84 degrees)"
        )
    return (values[0], values[1], values[2], values[3])


def cmd_inspect(args: argparse.Namespace) -> int:
    from citypipe.connectors.registry import open_location

    info = open_location(args.path, args.format).inspect()
    facts = {
        "path": args.path,
        "format": info.label,
        "crs": info.crs or "not declared",
        "layers": ", ".join(info.layers) or "-",
        "features": info.count if info.count is not None else "unknown",
        "declared count": info.declared_count if info.declared_count is not None else "-",
        **info.details,
    }
    if args.json:
        described = {**facts, "layer info": [dataclasses.asdict(x) for x in info.layer_info]}
        print(orjson.dumps(described, option=orjson.OPT_INDENT_2).decode())
    else:
        for k, v in facts.items():
            print(f"{k + ':':16}{v}")
        for x in info.layer_info:  # a service's feature types / collections, one line each
            said = [x.title or "-", "CRS " + (", ".join(x.crs) or "-")]
            said += ["formats " + ", ".join(x.formats)] if x.formats else []
            print(f"  {x.name}: {'; '.join(said)}")
    return 0


def _limits(args: argparse.Namespace) -> Any:
    from citypipe.core import warehouse

    limits = warehouse.Limits()
    if args.timeout is not None:
        limits = replace(limits, seconds=args.timeout)
    if args.memory:
        limits = replace(limits, memory=args.memory)
    return limits


def cmd_sql(args: argparse.Namespace) -> int:
    from citypipe.core import results, warehouse

    with warehouse.stream(_lake(args), args.sql, _limits(args)) as result:
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

    lake = _lake(args)
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


def cmd_run(args: argparse.Namespace) -> int:
    from citypipe.core.results import render_table
    from citypipe.orchestration.run import run

    outcomes = run(
        _lake(args),
        sources=args.source or None,
        force=args.force,
        partitions=args.partition,
        workers=args.workers,
    )
    rows = [
        [
            o.source,
            o.format or "-",
            o.features,
            o.rejects,
            o.checks,
            o.seconds,
            ("unchanged" if o.unchanged else "ok") if o.ok else "FAILED",
        ]
        for o in outcomes
    ]
    print(
        render_table(
            ["source", "format", "features", "rejects", "checks passed", "seconds", "status"], rows
        )
    )
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        print(f"citypipe: {o.source}: {o.error}", file=sys.stderr)
    return 2 if failed else 0


def cmd_schema(args: argparse.Namespace) -> int:
    from citypipe import schemas

    print(schemas.feature_schema().markdown())
    return 0


def _page_size(text: str) -> int:
    n = _count(text)
    if n == 0:
        raise argparse.ArgumentTypeError("a page holds at least one feature")
    return n


def _workers(text: str) -> int:
    n = _count(text)
    if n == 0:
        raise argparse.ArgumentTypeError("at least one worker")
    return n


def _count(text: str) -> int:
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number of rows")
    return n


def _limit_options(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--timeout",
        type=float,
        help="seconds a query may run (default 60, or $CITYPIPE_SQL_SECONDS)",
    )
    s.add_argument(
        "--memory", help="memory a query may use, e.g. 4GB (default 2GB, or $CITYPIPE_SQL_MEMORY)"
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="citypipe", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    lake_help = "lake folder or s3://bucket/prefix (default: $CITYPIPE_LAKE or data/lake)"

    s = sub.add_parser(
        "ingest", help="ingest one file or service as a source, replacing its previous output"
    )
    s.add_argument(
        "path",
        help="a file, or a service's URL (an OGC API landing page, /collections, a collection "
        "or its items)",
    )
    s.add_argument("--source", required=True, help="source name (the lake partition)")
    s.add_argument(
        "--crs",
        help="a file: the CRS of coordinates that declare none (e.g. EPSG:25832); a service: "
        "the CRS to ask the server for (one the layer lists)",
    )
    s.add_argument(
        "--layer", help="a service's collection or feature type, where the URL names none"
    )
    s.add_argument(
        "--bbox", type=_bbox, help="a service: only features in lon_min,lat_min,lon_max,lat_max"
    )
    s.add_argument(
        "--filter", help="a service: a CQL2 text filter on properties, e.g. \"region = 'Pfalz'\""
    )
    s.add_argument("--datetime", help="a service: an RFC 3339 instant or interval (a/b, ../b)")
    s.add_argument("--page-size", type=_page_size, help="a service: features asked per request")
    s.add_argument(
        "--incremental",
        action="store_true",
        help="a service: ask only for what changed since the last harvest landed, merged with "
        "its features (OGC API datetime, NGSI modification time); deletions are not seen",
    )
    s.add_argument(
        "--axis-order",
        choices=["xy", "authority"],
        help="read coordinates x/longitude first (xy) or in the CRS's own order (authority), "
        "whatever the format's rule says",
    )
    s.add_argument("--theme", help="theme of every feature (see schemas/themes.yaml)")
    s.add_argument("--format", help="connector to use instead of detecting it from the content")
    s.add_argument("--lake", help=lake_help)
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser(
        "inspect", help="what a file or service is: format, CRS, layers, count; writes nothing"
    )
    s.add_argument("path", help="a file, or a service's URL")
    s.add_argument("--format", help="connector to use instead of detecting it from the content")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("sql", help="read-only SQL on the warehouse (spatial functions loaded)")
    s.add_argument("sql")
    s.add_argument("--lake", help=lake_help)
    s.add_argument("--format", choices=["table", "csv", "json"], default="table")
    s.add_argument(
        "--limit",
        type=_count,
        help="rows to print (table: default 100, then how many there were; "
        "csv and json: every row unless given)",
    )
    s.add_argument("--wkb", action="store_true", help="geometry as WKB bytes (hex), not WKT")
    _limit_options(s)
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
    s.add_argument("--lake", help=lake_help)
    _limit_options(s)
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("run", help="the main job: ingest every catalog source, then the warehouse")
    s.add_argument("--lake", help=lake_help)
    s.add_argument("--source", action="append", help="only this source (repeatable)")
    s.add_argument(
        "--force", action="store_true", help="ingest also the sources whose file did not change"
    )
    s.add_argument(
        "--partition",
        action="append",
        help="only this partition of the --source: a tile, a day, days FIRST..LAST (repeatable)",
    )
    s.add_argument(
        "--workers",
        type=_workers,
        help="partitions ingested at once, each in a process of its own (default: the cores)",
    )
    s.set_defaults(func=cmd_run)

    s = sub.add_parser(
        "listen", help="receive NGSI-LD / NGSI v2 notifications into a source and observations"
    )
    s.add_argument("--source", required=True, help="source name the entities land as")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8668, help="port (default 8668; 0: any free)")
    s.add_argument(
        "--interval", type=float, default=10.0, help="seconds between runs that land (default 10)"
    )
    s.add_argument("--batch", type=_count, default=50_000, help="land sooner when this many wait")
    s.add_argument("--lake", help=lake_help)
    s.set_defaults(func=cmd_listen)

    s = sub.add_parser(
        "new-connector", help="write a connector package to start from: module, test, sample"
    )
    s.add_argument("name", help="the connector's name, e.g. parking-feed (the catalog's format:)")
    s.add_argument("--dest", default=".", help="folder to write citypipe-NAME/ in (default .)")
    s.set_defaults(func=cmd_new_connector)

    s = sub.add_parser("schema", help="print shared schema v1 as a Markdown table")
    s.set_defaults(func=cmd_schema)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    from citypipe.geo.errors import CitypipeError

    try:
        return func(args)
    except BrokenPipeError:  # the reader went away (`citypipe sql ... | head`): not an error
        # Python would report the pipe again when it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except CitypipeError as e:
        print(f"citypipe: error: {e}", file=sys.stderr)
        for note in getattr(e, "__notes__", ()):
            print(f"citypipe: also: {note}", file=sys.stderr)
        return 2
    except Exception as e:  # a bug, not the user's fault: still no traceback unless asked
        if os.environ.get("CITYPIPE_DEBUG"):
            raise
        print(
            f"citypipe: internal error: {type(e).__name__}: {e} (set CITYPIPE_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":
    sys.exit(main())

"""The commands over sources: ingest, inspect, run, listen, new-connector."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import orjson

from citypipe.cli_lake import LAKE_HELP, count, lake_of

__all__ = ["add_commands"]


def cmd_ingest(args: argparse.Namespace) -> int:
    from citypipe.core import progress, warehouse
    from citypipe.core.ingest import ingest
    from citypipe.core.results import render_table
    from citypipe.geo.errors import CitypipeError

    lake = lake_of(args)
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
            options={"query": query} if query else _file_options(args),
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


def _query(args: argparse.Namespace) -> Any:
    """The service query of `ingest URL`'s flags (None for a file, which takes none of them but
    `--layer`; for a URL `--crs` is the CRS to ask the server for)."""
    from citypipe.connectors.registry import is_url
    from citypipe.core.catalog import SERVICE_KEYS, query_of
    from citypipe.geo.errors import ConfigurationError

    given = [f for f in SERVICE_KEYS if getattr(args, f) is not None and f != "layer"]
    if not is_url(args.path):
        if given:
            flags = ", ".join("--" + f.replace("_", "-") for f in given)
            raise ConfigurationError(f"{args.path}: {flags} apply to a service's URL, not a file")
        return None
    return query_of(args)


def _file_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """A file's connector options from the flags: `--layer`, the layer of a file of several
    (GeoPackage), as a catalog entry's `options: {layer: NAME}`; a format without layers
    refuses it, naming the options it takes."""
    return {"layer": args.layer} if args.layer is not None else None


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


def cmd_run(args: argparse.Namespace) -> int:
    from citypipe.core.results import render_table
    from citypipe.orchestration.run import run

    outcomes = run(
        lake_of(args),
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


def cmd_listen(args: argparse.Namespace) -> int:
    import signal
    import threading

    from citypipe.core.lake import check_source_name
    from citypipe.core.listener import Listener
    from citypipe.geo.errors import ConfigurationError

    lake = lake_of(args)
    listener = Listener(
        lake, check_source_name(args.source), interval=args.interval, batch=args.batch
    )
    try:
        server = listener.serve(args.host, args.port)
    except OSError as e:
        raise ConfigurationError(f"cannot listen on {args.host}:{args.port}: {e}") from e
    listener.start()
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


def _page_size(text: str) -> int:
    n = count(text)
    if n == 0:
        raise argparse.ArgumentTypeError("a page holds at least one feature")
    return n


def _workers(text: str) -> int:
    n = count(text)
    if n == 0:
        raise argparse.ArgumentTypeError("at least one worker")
    return n


def add_commands(sub: Any) -> None:
    """ingest, inspect, run, listen and new-connector, on the parser's subcommands `sub`."""
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
        "--layer",
        help="a service's collection or feature type, where the URL names none; a file's layer "
        "(GeoPackage)",
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
    s.add_argument("--lake", help=LAKE_HELP)
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser(
        "inspect", help="what a file or service is: format, CRS, layers, count; writes nothing"
    )
    s.add_argument("path", help="a file, or a service's URL")
    s.add_argument("--format", help="connector to use instead of detecting it from the content")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("run", help="the main job: ingest every catalog source, then the warehouse")
    s.add_argument("--lake", help=LAKE_HELP)
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
    s.add_argument("--batch", type=count, default=50_000, help="land sooner when this many wait")
    s.add_argument("--lake", help=LAKE_HELP)
    s.set_defaults(func=cmd_listen)

    s = sub.add_parser(
        "new-connector", help="write a connector package to start from: module, test, sample"
    )
    s.add_argument("name", help="the connector's name, e.g. parking-feed (the catalog's format:)")
    s.add_argument("--dest", default=".", help="folder to write citypipe-NAME/ in (default .)")
    s.set_defaults(func=cmd_new_connector)

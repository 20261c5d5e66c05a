"""The `citypipe` command: ingest, inspect, sql, run, schema.

Errors a user can act on are printed as one line naming the input and the reason, with exit
code 2; nothing prints a traceback unless CITYPIPE_DEBUG is set.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

__all__ = ["main"]


def _lake(args: argparse.Namespace) -> Any:
    from pipelines.lake import Lake, default_lake

    return Lake(Path(args.lake) if args.lake else default_lake())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value[:16]).hex() + ("…" if len(value) > 16 else "")
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def render_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], width: int = 60) -> str:
    """Rows as an aligned text table; long cells are cut at `width` characters."""
    cells = [[_cell(v)[:width] for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def cmd_ingest(args: argparse.Namespace) -> int:
    from connectors.errors import CitypipeError
    from pipelines import warehouse
    from pipelines.ingest import ingest

    lake = _lake(args)
    try:
        report = ingest(
            args.path,
            args.source,
            lake,
            format=args.format,
            crs=args.crs,
            axis_order=args.axis_order,
            theme=args.theme,
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
            [[report.source, report.format, report.records, report.features, report.rejects, checks, report.seconds]],
        )
    )
    for reason, n in report.reasons.most_common(5):
        print(f"rejected {n}: {reason}")
    for warning, n in report.warnings.most_common(5):
        print(f"warning, {n} features: {warning}")
    for c in report.checks:
        if not c.passed:
            print(f"check failed: {c.name}: {c.description}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from connectors.registry import open_location

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
        print(orjson.dumps(facts, option=orjson.OPT_INDENT_2).decode())
    else:
        for k, v in facts.items():
            print(f"{k + ':':16}{v}")
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    from pipelines import warehouse

    limits = warehouse.Limits()
    if args.timeout is not None:
        limits = replace(limits, seconds=args.timeout)
    if args.memory:
        limits = replace(limits, memory=args.memory)
    columns, rows = warehouse.query(_lake(args), args.sql, limits)
    if args.format == "json":
        out = [dict(zip(columns, r)) for r in rows]
        print(orjson.dumps(out, default=_json_default, option=orjson.OPT_INDENT_2).decode())
    elif args.format == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        w.writerows([[_json_default(v) if isinstance(v, (bytes, bytearray)) else v for v in r] for r in rows])
        print(buf.getvalue(), end="")
    else:
        print(render_table(columns, rows))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from pipelines.run import run

    outcomes = run(_lake(args), sources=args.source or None)
    rows = [
        [o.source, o.format or "-", o.features, o.rejects, o.checks, o.seconds, "ok" if o.ok else "FAILED"]
        for o in outcomes
    ]
    print(render_table(["source", "format", "features", "rejects", "checks passed", "seconds", "status"], rows))
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        print(f"citypipe: {o.source}: {o.error}", file=sys.stderr)
    return 2 if failed else 0


def cmd_schema(args: argparse.Namespace) -> int:
    import schemas

    print(schemas.feature_schema().markdown())
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="citypipe", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    lake_help = "lake folder (default: $CITYPIPE_LAKE or data/lake)"

    s = sub.add_parser(
        "ingest", help="ingest one file or service as a source, replacing its previous output"
    )
    s.add_argument("path", help="a file, or a service's URL (e.g. an OGC API collection's items)")
    s.add_argument("--source", required=True, help="source name (the lake partition)")
    s.add_argument("--crs", help="CRS of the coordinates, for files that declare none (e.g. EPSG:25832)")
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
    s.add_argument("--timeout", type=float, help="seconds a query may run (default 60, or $CITYPIPE_SQL_SECONDS)")
    s.add_argument("--memory", help="memory a query may use, e.g. 4GB (default 2GB, or $CITYPIPE_SQL_MEMORY)")
    s.set_defaults(func=cmd_sql)

    s = sub.add_parser("run", help="the main job: ingest every catalog source, then the warehouse")
    s.add_argument("--lake", help=lake_help)
    s.add_argument("--source", action="append", help="only this source (repeatable)")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("schema", help="print shared schema v1 as a Markdown table")
    s.set_defaults(func=cmd_schema)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    from connectors.errors import CitypipeError

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

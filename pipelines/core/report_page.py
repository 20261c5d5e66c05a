"""Each source's validation report as one self-contained HTML page that opens anywhere, offline:
the run's counts, every check with its failing samples, why records were rejected, the warnings
and a map of the features (`preview`). Nothing is fetched: no script, no stylesheet or image
from elsewhere, and a Content-Security-Policy tells the browser so. (GX's Data Docs, kept beside
it, load their styles and scripts from CDNs and need a network to be read.)

Pages live in `<lake>/docs/sources/<NAME>.html`, with an index of them; each is replaced whole.
"""

from __future__ import annotations

import html
import os
from collections import Counter
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import TYPE_CHECKING

from citypipe.core import preview

if TYPE_CHECKING:
    from citypipe.core.ingest import IngestReport

__all__ = ["index_page", "page_path", "status", "write"]

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_STYLE = """body{font-family:sans-serif;margin:2em;color:#1a202c;max-width:60em}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #cbd5e0;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#edf2f7}.pass{color:#276749}.fail{color:#c53030}
.status{font-size:1.2em;padding:.5em;border-left:6px solid}code{font-size:.9em}"""


def page_path(docs: Path, source: str) -> Path:
    return docs / "sources" / f"{source}.html"


def status(report: IngestReport, blocking: AbstractSet[str]) -> tuple[bool, str]:
    """(landed?, what happened) for the head of the page."""
    if any(not c.passed and c.name in blocking for c in report.checks):
        return False, "refused: a blocking check failed; the previous output is kept"
    if report.records and not report.features:
        return False, "refused: no record could be ingested; the previous output is kept"
    if report.checks_failed:
        return True, f"landed, {report.checks_failed} non-blocking check(s) failed"
    return True, "landed, every check passed"


def _table(head: Iterable[str] | None, rows: Iterable[Iterable[object]]) -> str:
    """A table of `rows` (escaped), under `head` where there is one."""
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head) if head else ""
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table>{f'<tr>{cells}</tr>' if cells else ''}{body}</table>"


def _counted(what: str, unit: str, counts: Counter[str]) -> str:
    return _table((what, unit), counts.most_common()) if counts else "<p>none</p>"


def _checks(report: IngestReport, blocking: AbstractSet[str]) -> str:
    rows = "".join(
        f"<tr><td><code>{html.escape(c.name)}</code></td>"
        f'<td class="{"pass" if c.passed else "fail"}">{"passed" if c.passed else "failed"}</td>'
        f"<td>{c.failed}</td>"
        f"<td>{'yes' if c.name in blocking else 'no'}</td><td>{html.escape(c.description)}</td>"
        f"<td>{'<br>'.join(html.escape(s) for s in c.samples)}</td></tr>"
        for c in report.checks
    )
    head = "".join(
        f"<th>{h}</th>" for h in ("check", "result", "rows failing", "blocking", "what", "samples")
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _document(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def _replace(path: Path, text: str) -> None:
    """Write `path` whole or not at all: a reader never sees half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{os.getpid()}")
    part.write_text(text, encoding="utf-8")
    os.replace(part, path)


def write(report: IngestReport, docs: Path, blocking: AbstractSet[str]) -> Path:
    """The report page of `report`'s run, with a map of its shapes, and the index of all
    pages; returns the page."""
    landed, what = status(report, blocking)
    drawing = None
    if (shown := report.shapes) is not None:
        drawing = preview.map_svg(shown, f"{len(shown):,} of {report.features:,} features drawn")
    facts = _table(
        None,
        [
            ("source", report.source), ("run", report.run_id), ("when", report.ingested_at),
            ("read from", report.path), ("format", report.format),
            ("declared CRS", report.declared_crs or "none"), ("licence", report.licence or ""),
            ("records read", report.records), ("features", report.features),
            ("rejected", report.rejects),
            ("count the source declares", "" if report.declared_count is None else
             report.declared_count),
            ("seconds", report.seconds),
        ],
    )  # fmt: skip
    body = (
        f"<h1>{html.escape(report.source)}</h1>"
        f'<p class="status {"pass" if landed else "fail"}">{html.escape(what)}</p>{facts}'
        f"<h2>Map</h2>{drawing or '<p>no geometry to draw</p>'}"
        f"<h2>Checks</h2>{_checks(report, blocking)}"
        f"<h2>Why records were rejected</h2>{_counted('reason', 'records', report.reasons)}"
        f"<h2>Warnings</h2>{_counted('warning', 'times', report.warnings)}"
        f'<p><a href="index.html">all sources</a></p>'
    )
    page = page_path(docs, report.source)
    _replace(page, _document(f"citypipe: {report.source}", body))
    _replace(page.with_name("index.html"), index_page(page.parent))
    return page


def index_page(folder: Path) -> str:
    """The list of the report pages in `folder`."""
    names = sorted(p.stem for p in folder.glob("*.html") if p.name != "index.html")
    items = "".join(f'<li><a href="{html.escape(n)}.html">{html.escape(n)}</a></li>' for n in names)
    return _document("citypipe: validation reports", f"<h1>Validation reports</h1><ul>{items}</ul>")

"""MapServer 8 (Debian's cgi-mapserver) as a WFS 1.1.0 / 2.0.0 on 127.0.0.1, for the tests.

A CGI bridge: a small HTTP server in this process runs the `mapserv` binary once per request
with the CGI variables (QUERY_STRING, REQUEST_METHOD, the POST body on stdin) and the mapfile
`citypipe.map` beside this module, and hands back its headers and body. MapServer derives its
online resource from HTTP_HOST and SCRIPT_NAME, so its capabilities and `next` links point at
the bridge (or, through `host`, at a proxy in front of it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from loopback import serving

from servers.facts import FONTS, PARKPLAETZE, Layer

HERE = Path(__file__).resolve().parent
MAPFILE = HERE / "citypipe.map"
CONFIG = HERE / "mapserver.conf"
SCRIPT = "/wfs"


@dataclass(frozen=True)
class FeatureType:
    """A layer as the mapfile serves it."""

    layer: Layer
    default_crs: str
    other_crs: tuple[str, ...]
    number_matched: bool
    """Whether WFS 2.0 result pages carry numberMatched (else "unknown"; hits always count)."""
    aliases: dict[str, str] = field(default_factory=dict)
    """Sample property -> the element name MapServer writes (a name with a space is no XML
    name, so the mapfile aliases it; umlauts stay)."""

    @property
    def name(self) -> str:
        return self.layer.name


FEATURE_TYPES = (
    FeatureType(FONTS, "EPSG:4326", ("EPSG:25831", "EPSG:3857"), number_matched=True),
    FeatureType(
        PARKPLAETZE,
        "EPSG:25832",
        ("EPSG:4326", "EPSG:3857"),
        number_matched=False,
        aliases={
            name: name.replace(" ", "_")
            for name in (
                "Anzahl der Stellplätze",
                "Frei für Parkausweis-Nr",
                "Parkschein erforderlich",
                "Parkscheibe erforderlich",
                "Parkerlaubnis zeitlich",
                "Beschränkung sonstig",
            )
        },
    ),
)
COUNT_DEFAULT = 5000
"""The most features one GetFeature returns (wfs_maxfeatures, CountDefault). Above every
layer's count: MapServer 8.0 caps even resultType=hits at it (GDAL #13515's trap)."""
OUTPUT_FORMATS = {
    "gml32": "application/gml+xml; version=3.2",
    "gml311": "text/xml; subtype=gml/3.1.1",
    "geojson": "application/json; subtype=geojson",
}
"""Output formats by short name: GML 3.2 is the WFS 2.0 default, GML 3.1.1 that of 1.1.0."""


@dataclass(frozen=True)
class WfsServer:
    url: str
    """The service endpoint (add ?SERVICE=WFS&...)."""
    feature_types: dict[str, FeatureType]
    versions: tuple[str, ...] = ("1.1.0", "2.0.0")


def mapserv_binary() -> str | None:
    return shutil.which("mapserv")


def _cgi_reply(output: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of a CGI program's output."""
    for end in (b"\r\n\r\n", b"\n\n"):
        head, sep, body = output.partition(end)
        if sep:
            break
    else:
        return 502, [("Content-Type", "text/plain")], b"mapserv wrote no CGI headers"
    status, headers = 200, []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.split()[0])
        else:
            headers.append((name.strip(), value.strip()))
    return status, headers, body


def _handler(mapserv: str, host: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _run(self, body: bytes = b"") -> None:
            parts = urlsplit(self.path)
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "MAPSERVER_CONFIG_FILE": str(CONFIG),
                "MS_MAPFILE": str(MAPFILE),
                "REQUEST_METHOD": self.command,
                "QUERY_STRING": parts.query,
                "SCRIPT_NAME": parts.path,
                "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": str(self.server.server_address[1]),
                "HTTP_HOST": host or self.headers.get("Host", ""),
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
            }
            done = subprocess.run([mapserv], input=body, env=env, capture_output=True, check=False)
            status, headers, payload = _cgi_reply(done.stdout)
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._run()

        def do_POST(self) -> None:
            self._run(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serve_mapserver(host: str = "") -> Iterator[WfsServer]:
    """The bridge on a free port of 127.0.0.1 for the duration. `host` (host:port) is the
    address MapServer writes into its links; by default the one the client asked for."""
    mapserv = mapserv_binary()
    if mapserv is None:
        raise FileNotFoundError("mapserv is missing: run `make servers` (as root, with apt)")
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), _handler(mapserv, host))) as origin:
        yield WfsServer(origin + SCRIPT, {t.name: t for t in FEATURE_TYPES})

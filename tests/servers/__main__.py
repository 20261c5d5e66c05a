"""Start the test servers by hand (or from a script, e.g. the bench):

    PYTHONPATH=tests .venv/bin/python -m servers [--proxy]

prints one JSON line (the URLs and the layers' facts) once both answer, then serves until
interrupted (Ctrl-C / SIGTERM). With --proxy, a fault proxy in front of each, unscripted.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path

from servers.faults import serve_fault_proxy
from servers.mapserver import serve_mapserver
from servers.pygeoapi_server import serve_pygeoapi


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m servers", description=__doc__)
    parser.add_argument("--proxy", action="store_true", help="a fault proxy before each")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="citypipe-")))
        pygeoapi = stack.enter_context(serve_pygeoapi(workdir))
        mapserver = stack.enter_context(serve_mapserver())
        urls = {"pygeoapi": pygeoapi.url, "mapserver": mapserver.url}
        if args.proxy:
            for name, url in list(urls.items()):
                urls[f"{name}_proxy"] = stack.enter_context(serve_fault_proxy(url)).url
        facts = {
            "collections": {k: asdict(v) for k, v in pygeoapi.collections.items()},
            "feature_types": {k: asdict(v) for k, v in mapserver.feature_types.items()},
        }
        print(json.dumps({**urls, **facts}, ensure_ascii=False), flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()

"""Finding a file's format loads every connector's module to ask its `sniff`, in every `citypipe`
command before any reading starts: what a connector needs only to read or fetch (GDAL, HTTP,
OWSLib, JSON-LD, JSON Schema and its registry) stays unloaded until then, and so does pandas, which
pyarrow loads at its first `pa.array` (no module's constant calls it at load)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = (
    "pyogrio", "requests", "owslib", "pyld", "jsonschema", "jsonschema_rs", "referencing", "pandas",
)  # fmt: skip

_DETECT = """
import json, sys
from pathlib import Path
from citypipe.connectors import registry
names = [registry.detect(Path(p)).name for p in sys.argv[1:]]
print(json.dumps({"names": names, "loaded": sorted(m for m in %r if m in sys.modules)}))
"""


def test_detecting_a_format_loads_no_reader_dependency(sample) -> None:
    files = [
        sample("jena_parking.geojson"),
        sample("citygml/denhaag_1BwBP_citygml1.gml"),
        sample("jena_parking.fgb"),
    ]
    done = subprocess.run(
        [sys.executable, "-c", _DETECT % (HEAVY,), *map(str, files)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent,
    )
    found = json.loads(done.stdout)
    assert found["names"] == ["geojson", "citygml", "ogr"]
    assert found["loaded"] == []

"""The days section of the benchmark: a source partitioned by day backfilled by `citypipe run`
with 1 and with 2 worker processes, against the same day harvests in one plain process.

The source is the NGSI test broker's temporal API on loopback (tests/servers: 1500
AirQualityObserved entities, 105,000 values an hour apart on 2016-03-15), with `partitions:
{daily: 2016-03-14}`; the backfill is four days, `--partition 2016-03-14..2016-03-17` (one with
every value, three with none). The plain side is one Python process calling
`citypipe.core.ingest.ingest` for each day with the arguments the Dagster step gives it, then
rendering the validation reports: what the run adds is Dagster's run and event log, the
forkserver of the steps and the warehouse. The rounds take the three in turn and each keeps its
best CPU time (the children's user + system, forkserver and steps included) and wall time.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from tempfile import TemporaryDirectory

import yaml
from runjob import _timed  # bench/runjob.py
from tiles import _load  # bench/tiles.py

FIRST, LAST = "2016-03-14", "2016-03-17"
DAYS = ("2016-03-14", "2016-03-15", "2016-03-16", "2016-03-17")
PLAIN = f"""
import sys
from pathlib import Path
from citypipe.core import datadocs
from citypipe.core.catalog import load_catalog
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake

lake = Lake(Path(sys.argv[1]))
source = load_catalog().get("air")
for day in {DAYS!r}:
    arguments = source.ingest_arguments(None, day)
    ingest(source.location, source.name, lake, **arguments, render_docs=False, partition=day)
datadocs.render(lake.docs)
"""


def run_days(root: Path, rounds: int) -> None:
    """Best CPU and wall time of a four-day backfill: `citypipe run` with 1 and 2 workers, and
    the plain loop."""
    sys.path.insert(0, str(root / "tests"))
    from servers.ngsi_broker import loaded, serve_broker  # tests/servers

    citypipe = str(root / ".venv" / "bin" / "citypipe")
    python = str(root / ".venv" / "bin" / "python")
    with TemporaryDirectory(prefix="citypipe-bench-days-") as work, serve_broker(loaded()) as b:
        url = f"{b.url}/ngsi-ld/v1/temporal/entities?type=AirQualityObserved"
        catalog = Path(work) / "catalog.yaml"
        entry = {"url": url, "partitions": {"daily": FIRST}}
        catalog.write_text(yaml.safe_dump({"sources": {"air": entry}}), encoding="utf-8")
        env = {**os.environ, "CITYPIPE_CATALOG": str(catalog), "DAGSTER_HOME": f"{work}/dagster"}
        run = [citypipe, "run", "--source", "air", "--partition", f"{FIRST}..{LAST}"]
        sides = {
            "run, 1 worker": [*run, "--lake", f"{work}/run1", "--workers", "1"],
            "run, 2 workers": [*run, "--lake", f"{work}/run2", "--workers", "2"],
            "plain": [python, "-c", PLAIN, f"{work}/plain"],
        }
        best = {side: (float("inf"), float("inf")) for side in sides}
        for _ in range(max(rounds, 1)):
            for side, command in sides.items():
                cpu, wall = _timed(command, env)
                best[side] = (min(best[side][0], cpu), min(best[side][1], wall))
                print(
                    f"  {side}: CPU {cpu:6.1f} s, wall {wall:6.1f} s (load {_load()})", flush=True
                )
    print(f"\ndays ({FIRST}..{LAST} of the broker's history, best of {max(rounds, 1)} rounds)")
    print(f"{'side':>16} {'CPU s':>8} {'wall s':>8}")
    for side, (cpu, wall) in best.items():
        print(f"{side:>16} {cpu:8.1f} {wall:8.1f}")

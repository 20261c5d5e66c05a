"""The tiles section of the benchmark: a partitioned source of 100 CityGML tiles ingested by
`citypipe run` with 1 and with 2 worker processes, and the speed-up.

The tiles are the corpus's NRW LoD2 tile (264 city objects, 3.8 MB) copied over a 10 x 10 grid
of neighbouring tiles, each copy moved by whole kilometres and its gml:ids suffixed with its
number, written into a temporary folder with a catalog naming them by a glob (`path:
tiles/*.gml`): 100 partitions. Each side is `citypipe run --force --workers N` as a whole
process (imports, the Dagster run, the warehouse refresh); the rounds take the sides in turn
(1 2 1 2 ...) and each keeps its best wall-clock time and its best CPU time (the children's user
+ system, forkserver and step processes included). The speed-up is the wall-clock ratio; on a
shared machine it shows what the cores left over allow, so the load average is printed with it.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from tempfile import TemporaryDirectory

from run import by_kilometre, moved_copy, nrw_parts  # bench/run.py
from runjob import _timed  # bench/runjob.py

WORKERS = (1, 2)


def nrw_tiles(dest: Path, n: int) -> list[Path]:
    """`n` copies of the NRW tile, one file each, named by their kilometre as the state names
    its tiles (LoD2_32_<east>_<north>_1_NW.gml)."""
    head, members, tail = nrw_parts()
    marked, markers = by_kilometre(members)
    side = max(1, int(n**0.5 + 0.999))
    dest.mkdir(parents=True, exist_ok=True)
    files = []
    for copy, shift in enumerate(itertools.islice(itertools.product(range(side), repeat=2), n)):
        path = dest / f"LoD2_32_{326 + shift[0]}_{5727 + shift[1]}_1_NW.gml"
        path.write_text(head + moved_copy(marked, markers, shift, copy) + tail, encoding="utf-8")
        files.append(path)
    return files


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_tiles(root: Path, rounds: int, n: int) -> None:
    """Best wall and CPU time of `citypipe run` over `n` tiles with each number of workers."""
    citypipe = str(root / ".venv" / "bin" / "citypipe")
    with TemporaryDirectory(prefix="citypipe-bench-tiles-") as work:
        files = nrw_tiles(Path(work) / "tiles", n)
        catalog = Path(work) / "catalog.yaml"
        catalog.write_text("sources:\n  nrw:\n    path: tiles/*.gml\n    theme: building\n")
        env = {
            **os.environ,
            "CITYPIPE_CATALOG": str(catalog),
            "DAGSTER_HOME": f"{work}/dagster",
        }
        best = {w: (float("inf"), float("inf")) for w in WORKERS}
        loads = []
        for _ in range(max(rounds, 1)):
            for workers in WORKERS:
                command = [citypipe, "run", "--force", "--lake", f"{work}/lake"]
                cpu, wall = _timed([*command, "--workers", str(workers)], env)
                best[workers] = (min(best[workers][0], cpu), min(best[workers][1], wall))
                loads.append(_load())
                print(f"  {workers} worker(s): CPU {cpu:7.1f} s, wall {wall:7.1f} s "
                      f"(load {loads[-1]})", flush=True)  # fmt: skip
        size = sum(f.stat().st_size for f in files) / 1e6
    print(f"\ntiles ({n} NRW tiles, {size:.0f} MB, best of {max(rounds, 1)} rounds)")
    print(f"{'workers':>8} {'CPU s':>8} {'wall s':>8} {'tiles/s':>8}")
    for workers in WORKERS:
        cpu, wall = best[workers]
        print(f"{workers:>8} {cpu:8.1f} {wall:8.1f} {n / wall:8.2f}")
    print(
        f"speed-up, 2 workers over 1: {best[1][1] / best[2][1]:.2f} (wall); CPU 2 / 1: "
        f"{best[2][0] / best[1][0]:.2f}; load averages: {', '.join(loads)}"
    )

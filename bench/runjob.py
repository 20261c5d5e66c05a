"""The run section of the benchmark: `citypipe run` of the sample catalog (data/catalog.yaml)
against the least the same work takes, in the same run.

  plain     one Python process that ingests and validates every catalog source one after
            another with `citypipe.core.ingest.ingest` (the arguments the Dagster asset gives
            it) and renders the validation reports once at the end
  run       `citypipe run --force`: the same ingests as Dagster assets with their asset checks, each
            file's raw snapshot, the run recorded in a persistent Dagster instance, the
            warehouse views refreshed and the reports rendered once
  run, Dagster's own storage
            the same, the instance's dagster.yaml a user's naming no storage: Dagster's own
            SQLite storages, where citypipe's keep one engine per database
            (pipelines/orchestration/instance.py)
Both are whole processes (imports included) with a lake of their own, kept across rounds as a
user's is; the rounds take the two in turn and each keeps its best: CPU time (the children's
user + system, the measure on a shared machine) and wall-clock time. Then the UI's "Materialize
all" against `citypipe run`, wall-clock time as the user waits (bench/ui_launch.py).
"""

from __future__ import annotations

import ctypes
import os
import resource
import subprocess
import time
from contextlib import suppress
from pathlib import Path
from tempfile import TemporaryDirectory

from ui_launch import ui_launch  # bench/ui_launch.py

PLAIN = """
import sys
from pathlib import Path
from citypipe.core import datadocs
from citypipe.core.catalog import load_catalog
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake

lake = Lake(Path(sys.argv[1]))
for source in load_catalog().sources:
    ingest(source.location, source.name, lake, **source.ingest_arguments(), render_docs=False)
datadocs.render(lake.docs)
"""


_PR_SET_CHILD_SUBREAPER = 36


def _adopt_orphans() -> None:
    """Make this process the parent of its descendants whose parent exits first (Linux), so
    their CPU time is counted: the processes Dagster's multiprocess executor forks from its
    forkserver are not the run's children, and the forkserver outlives the run by a moment."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """CPU seconds (user + system) and wall seconds of one child process and of every process
    it started (each waited for, to its end)."""
    _adopt_orphans()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    with suppress(ChildProcessError):
        while True:
            os.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        tail = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise RuntimeError(f"{command[1:3]} failed: {tail}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return cpu, wall


def run_job(root: Path, rounds: int) -> None:
    """Best CPU and wall time of each side over `rounds` rounds, and their ratios."""
    python = str(root / ".venv" / "bin" / "python")
    citypipe = str(root / ".venv" / "bin" / "citypipe")
    with TemporaryDirectory(prefix="citypipe-bench-run-") as work:
        env = {
            **os.environ,
            "CITYPIPE_CATALOG": str(root / "data" / "catalog.yaml"),
            "CITYPIPE_LAKE": f"{work}/run/lake",
            "DAGSTER_HOME": f"{work}/run/dagster",
        }
        own = Path(work, "own", "dagster")  # a dagster.yaml of the user's: Dagster's storage
        own.mkdir(parents=True)
        (own / "dagster.yaml").write_text("# Dagster's default storage\n", encoding="utf-8")
        sides = {
            "plain": ([python, "-c", PLAIN, f"{work}/plain/lake"], env),
            "run": ([citypipe, "run", "--force"], env),  # every source, as plain ingests them
            "run, Dagster's own storage": (
                [citypipe, "run", "--force"],
                {**env, "CITYPIPE_LAKE": f"{work}/own/lake", "DAGSTER_HOME": str(own)},
            ),
        }
        best = {name: (float("inf"), float("inf")) for name in sides}
        for _ in range(max(rounds, 2)):  # the first round makes the Dagster instance too
            for name, (command, e) in sides.items():
                cpu, wall = _timed(command, e)
                best[name] = (min(best[name][0], cpu), min(best[name][1], wall))
    print(f"\nrun (data/catalog.yaml, best of {max(rounds, 2)} rounds)")
    print(f"{'':28} {'CPU s':>8} {'wall s':>8}")
    for name in sides:
        print(f"{name:28} {best[name][0]:8.2f} {best[name][1]:8.2f}")
    cpu = best["run"][0] / best["plain"][0]
    wall = best["run"][1] / best["plain"][1]
    print(f"run / plain: CPU {cpu:.2f}, wall {wall:.2f} (target: at most 2)")
    with TemporaryDirectory(prefix="citypipe-bench-ui-") as work:
        cli, ui = ui_launch(root, Path(work), max(rounds, 2))
    print(f"citypipe run, from an empty lake {cli:8.2f} s wall")
    print(f"Materialize all (dagster dev)    {ui:8.2f} s wall")
    print(f"Materialize all / citypipe run: {ui / cli:.2f} (target: at most 1.5)")

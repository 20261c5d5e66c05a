"""The run section's "Materialize all" row: the sample catalog materialised as the Dagster UI
does it, against `citypipe run`, in the same rounds.

The UI's "Materialize all" asks the webserver to launch the asset job with every asset; the
run is queued, the daemon dequeues it and the run launcher starts a run worker process that
loads the code location and executes the run. Here `dagster dev` (what `make ui` starts: the
webserver and the daemon) on 127.0.0.1 takes that launch through its GraphQL API (the call the
button makes) on the persistent instance citypipe writes, and the time is from the request to
the run's end, as the user waits for it. Both sides start from an empty lake each
round, so both ingest everything.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from dagster_graphql import DagsterGraphQLClient

from citypipe.orchestration.instance import open_instance

_ASSET_JOB = "__ASSET_JOB"
"""The job Dagster makes of all assets, which "Materialize all" launches."""
_PATIENCE = 600
"""Seconds a run may take before the bench gives up on it (a queued run nobody dequeues)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serving(client: DagsterGraphQLClient, server: subprocess.Popen[bytes], until: float) -> None:
    while time.monotonic() < until:
        if server.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {server.returncode}")
        try:
            client._execute("{ version }")  # the client has no public ping
            return
        except Exception:  # noqa: BLE001 - not listening yet
            time.sleep(0.5)
    raise RuntimeError("dagster dev did not answer in time")


def _materialize_all(client: DagsterGraphQLClient) -> float:
    started = time.perf_counter()
    run_id = client.submit_job_execution(_ASSET_JOB)
    while (status := client.get_run_status(run_id).value) not in ("SUCCESS", "FAILURE", "CANCELED"):
        if time.perf_counter() - started > _PATIENCE:
            raise RuntimeError(f"Materialize all still {status} after {_PATIENCE} s (run {run_id})")
        time.sleep(0.05)
    if status != "SUCCESS":
        raise RuntimeError(f"Materialize all ended {status} (run {run_id})")
    return time.perf_counter() - started


def _cli_run(citypipe: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([citypipe, "run"], env=env, capture_output=True, check=True)
    return time.perf_counter() - started


def ui_launch(root: Path, work: Path, rounds: int) -> tuple[float, float]:
    """Best wall seconds of `citypipe run` and of "Materialize all", each from an empty lake."""
    lake, home = work / "lake", work / "dagster"
    env = {
        **os.environ,
        "CITYPIPE_CATALOG": str(root / "data" / "catalog.yaml"),
        "CITYPIPE_LAKE": str(lake),
        "DAGSTER_HOME": str(home),
    }
    open_instance(home).dispose()  # citypipe's dagster.yaml, as `citypipe run` writes it
    port = _free_port()
    dev = [str(root / ".venv" / "bin" / "dagster"), "dev", "-w", str(root / "workspace.yaml")]
    server = subprocess.Popen(
        [*dev, "-h", "127.0.0.1", "-p", str(port)],
        env=env,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its webserver, daemon and code servers stopped with it
    )
    best = [float("inf"), float("inf")]
    try:
        client = DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=30)
        _serving(client, server, time.monotonic() + 120)
        citypipe = str(root / ".venv" / "bin" / "citypipe")
        sides = (lambda: _cli_run(citypipe, env), lambda: _materialize_all(client))
        for _ in range(rounds):
            for k, side in enumerate(sides):
                shutil.rmtree(lake, ignore_errors=True)
                best[k] = min(best[k], side())
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # its daemon and code servers slow to stop
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    return best[0], best[1]

"""The persistent Dagster instance's storages (pipelines/orchestration/instance.py): written into
a new DAGSTER_HOME, never over a user's dagster.yaml; one engine a database however many events;
commits in WAL mode with synchronous=NORMAL; nothing lost when two processes write the same run.
"""

from __future__ import annotations

import logging
import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, EventLogEntry
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SqliteEventLogStorage as DagsterEventLogStorage,
)

from citypipe.orchestration import instance as kept
from citypipe.orchestration.instance import (
    MAX_OPEN,
    SqliteEventLogStorage,
    SqliteRunStorage,
    open_instance,
)

RUN = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def _entry(message: str, run_id: str = RUN) -> EventLogEntry:
    return EventLogEntry(
        error_info=None,
        level=logging.INFO,
        user_message=message,
        run_id=run_id,
        timestamp=time.time(),
    )


def _messages(storage: DagsterEventLogStorage, run_id: str = RUN) -> list[str]:
    return [r.event_log_entry.user_message for r in storage.get_records_for_run(run_id).records]


def test_a_new_home_gets_citypipes_storages_on_dagsters_own_layout(tmp_path: Path) -> None:
    with open_instance(tmp_path) as instance:
        assert isinstance(instance.run_storage, SqliteRunStorage)
        assert isinstance(instance.event_log_storage, SqliteEventLogStorage)
    config = yaml.safe_load((tmp_path / "dagster.yaml").read_text())
    assert config["event_log_storage"]["config"]["base_dir"] == str(tmp_path / "history" / "runs")
    assert (tmp_path / "history" / "runs.db").is_file()  # where Dagster's default keeps runs
    # Dagster's own loader, as `dagster dev` reads the home, takes the same classes
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.event_log_storage, SqliteEventLogStorage)


def test_a_users_dagster_yaml_is_left_as_it_is(tmp_path: Path) -> None:
    text = "telemetry:\n  enabled: false\n"
    (tmp_path / "dagster.yaml").write_text(text)
    with open_instance(tmp_path) as instance:
        assert type(instance.event_log_storage) is not SqliteEventLogStorage
    assert (tmp_path / "dagster.yaml").read_text() == text


def test_one_engine_a_database_however_many_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dagster's storage makes an engine for every transaction; these keep one a file. Dagster's
    own `create_engine` in its module is counted too: were `_connect` (the private method the
    subclass overrides) no longer the way every connection goes, it would be called."""
    made: list[str] = []

    def counted(create):
        def create_engine(url: str, *args, **kwargs):
            made.append(str(url))
            return create(url, *args, **kwargs)

        return create_engine

    monkeypatch.setattr(kept, "create_engine", counted(kept.create_engine))
    storage = SqliteEventLogStorage(str(tmp_path))
    monkeypatch.setattr(sqlite_event_log, "create_engine", counted(sqlite_event_log.create_engine))
    for k in range(50):
        storage.store_event(_entry(f"event {k}"))
    assert _messages(storage) == [f"event {k}" for k in range(50)]
    assert len(made) == len(set(made)) <= 2  # the run's database (and the index) once each
    kept.ENGINES.dispose()


def test_commits_are_in_wal_mode_with_synchronous_normal(tmp_path: Path) -> None:
    storage = SqliteEventLogStorage(str(tmp_path))
    storage.store_event(_entry("one"))
    with sqlite3.connect(tmp_path / f"{RUN}.db") as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with storage.run_connection(RUN) as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    kept.ENGINES.dispose()


def test_databases_beyond_the_bound_are_closed_and_open_again(tmp_path: Path) -> None:
    storage = SqliteEventLogStorage(str(tmp_path))
    runs = [f"{RUN[:-2]}{k:02d}" for k in range(MAX_OPEN + 4)]
    for run_id in runs + runs[:2]:
        storage.store_event(_entry(f"in {run_id}", run_id))
    assert len(kept.ENGINES._engines) == MAX_OPEN
    assert _messages(storage, runs[0]) == [f"in {runs[0]}"] * 2
    kept.ENGINES.dispose()


def _write(base_dir: str, who: str, n: int) -> None:
    storage = SqliteEventLogStorage(base_dir)
    for k in range(n):
        storage.store_event(_entry(f"{who} {k}"))


def test_two_processes_writing_one_run_lose_no_event(tmp_path: Path) -> None:
    """Step processes of the multiprocess executor write the same run's database at once."""
    storage = SqliteEventLogStorage(str(tmp_path))
    storage.store_event(_entry("parent"))  # the parent's engine is open when the children fork
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_write, args=(str(tmp_path), w, 200)) for w in "ab"]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    storage.store_event(_entry("parent again"))  # the parent's connection still works
    messages = _messages(storage)
    assert len(messages) == 402
    assert [m for m in messages if m.startswith("a ")] == [f"a {k}" for k in range(200)]
    kept.ENGINES.dispose()

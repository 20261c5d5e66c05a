"""The persistent Dagster instance on SQLite, with storages that keep one engine per database.

Dagster's SQLite storages make a new SQLAlchemy engine, and open a new connection, for every
statement's transaction: a `citypipe run` of the sample catalog stores some 830 events and paid
about 8 s of a 14 s run for it (engines, connections, and an fsync of every commit). These
subclasses keep one engine (with its pool of open connections) per database file, at most
`MAX_OPEN` files, and commit with `synchronous=NORMAL`: in WAL mode, which Dagster sets on every
database it creates, a commit is then durable against a crash of the process, not of the machine,
which is SQLite's recommended setting for WAL. They are named in the instance's dagster.yaml
(`instance_yaml`), so `dagster dev` on the same DAGSTER_HOME uses them too.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as db
import yaml
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SqliteEventLogStorage as DagsterEventLogStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import (
    SqliteRunStorage as DagsterRunStorage,
)
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import (
    SqliteScheduleStorage as DagsterScheduleStorage,
)
from dagster._core.storage.sql import create_engine
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine

__all__ = [
    "MAX_OPEN", "SqliteEventLogStorage", "SqliteRunStorage", "SqliteScheduleStorage",
    "instance_yaml", "open_instance",
]  # fmt: skip

MAX_OPEN = 8
"""Database files with an engine kept open: the run's own shard, the index, runs, schedules."""
SQLITE_BUSY_SECONDS = 30
"""How long a writer waits for another process's transaction (Dagster's own setting: 30 s)."""


class _Engines:
    """One engine a database file, the least recently used disposed beyond `MAX_OPEN`."""

    def __init__(self) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def get(self, conn_string: str) -> Engine:
        with self._lock:
            engine = self._engines.pop(conn_string, None) or _engine(conn_string)
            self._engines[conn_string] = engine
            while len(self._engines) > MAX_OPEN:
                self._engines.popitem(last=False)[1].dispose()
            return engine

    def dispose(self) -> None:
        """Close every connection (before database files are removed under them)."""
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def _forget(self) -> None:
        """In a forked child: the parent's connections are not the child's to use or close."""
        for engine in self._engines.values():
            engine.dispose(close=False)
        self._engines.clear()
        self._lock = threading.Lock()


def _engine(conn_string: str) -> Engine:
    engine = create_engine(conn_string, connect_args={"timeout": SQLITE_BUSY_SECONDS})

    @db.event.listens_for(engine, "connect")
    def _durable_per_process(connection: Any, _record: Any) -> None:
        connection.execute("PRAGMA synchronous=NORMAL")

    return engine


ENGINES = _Engines()


@contextmanager
def _transaction(conn_string: str) -> Iterator[Connection]:
    with ENGINES.get(conn_string).connect() as conn, conn.begin():
        yield conn


class _OnKeptEngine:
    """A Dagster SQLite storage of one database (`_conn_string`), its connections on a kept
    engine; Dagster's `from_config_value` names Dagster's class, this one the subclass."""

    _conn_string: str
    from_local: Callable[..., Any]

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> Any:
        return cls.from_local(inst_data=inst_data, **config_value)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with _transaction(self._conn_string) as conn:
            yield conn


class SqliteRunStorage(_OnKeptEngine, DagsterRunStorage):
    """Dagster's SQLite run storage, on a kept engine."""


class SqliteScheduleStorage(_OnKeptEngine, DagsterScheduleStorage):
    """Dagster's SQLite schedule storage, on a kept engine."""


class SqliteEventLogStorage(DagsterEventLogStorage):
    """Dagster's SQLite event log storage (a database a run, and an index), on kept engines.

    `_connect` is Dagster's private method that all of this storage's connections go through
    (there is no public hook); tests/test_dagster_instance.py fails if its signature changes."""

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Any
    ) -> SqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            conn_string = self.conn_string_for_shard(shard)
            if shard not in self._initialized_dbs:
                self._initdb(ENGINES.get(conn_string))
                self._initialized_dbs.add(shard)
            with _transaction(conn_string) as conn:
                yield conn

    def wipe(self) -> None:
        ENGINES.dispose()  # the run databases are removed: no connection may outlive them
        super().wipe()


def instance_yaml(home: Path) -> dict[str, Any]:
    """dagster.yaml's storage settings naming these classes, on Dagster's own default layout
    (history/, history/runs/, schedules/), so an instance made before keeps its runs."""

    def storage(cls: type, folder: Path) -> dict[str, Any]:
        return {"module": __name__, "class": cls.__name__, "config": {"base_dir": str(folder)}}

    return {
        "run_storage": storage(SqliteRunStorage, home / "history"),
        "event_log_storage": storage(SqliteEventLogStorage, home / "history" / "runs"),
        "schedule_storage": storage(SqliteScheduleStorage, home / "schedules"),
    }


def open_instance(home: Path, overrides: dict[str, Any] | None = None) -> DagsterInstance:
    """The instance in `home`; its dagster.yaml is written with `instance_yaml` when it has
    none (a user's own is left as it is, with whatever storage it names)."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        text = "# Written by citypipe: Dagster's SQLite storages on kept engines "
        text += "(citypipe/orchestration/instance.py).\n"
        text += yaml.safe_dump(instance_yaml(home.absolute()), sort_keys=False)
        partial = home / ".dagster.yaml.partial"
        partial.write_text(text, encoding="utf-8")
        partial.replace(config)
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home), overrides=overrides))

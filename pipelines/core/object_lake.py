"""The lake on object storage (S3, or a service speaking its API): `--lake s3://bucket/prefix`.

    s3://bucket/prefix/features/<NAME>/part-0.parquet   one object per kind per source
    s3://bucket/prefix/rejects/<NAME>/part-0.parquet
    s3://bucket/prefix/surfaces/<NAME>/part-0.parquet
    s3://bucket/prefix/quarantine/<NAME>/<run>.parquet
    s3://bucket/prefix/attempts/<NAME>/<run>.json
    s3://bucket/prefix/observations/day=<YYYY-MM-DD>/<run>.parquet
    s3://bucket/prefix/.staging/<NAME>/<run>/...          uploads of the run in progress

The keys are those of the local lake's table files, so every reader globs the same paths
(`read_parquet('s3://bucket/prefix/features/*/*.parquet')`, a pyarrow dataset, geopandas).
S3 has no links and no renames: what it has is that one PUT or server-side copy replaces an
object whole. A run is staged and written on the local disk as for a local lake (in the lake's
local folder, which also holds the warehouse file and the validation reports); only a run that
ends without an error is uploaded, each file to a staging key, and then copied into place,
rejects and surfaces first, features last (their footer holds the run's record, which the
`sources` view and `citypipe run`'s change detection read). So a reader sees each object old or
new, never half-written; a failed run leaves every object as it was. What S3 cannot give is one
step across objects: for the few milliseconds of the three copies a reader may see one kind of
the new run beside another of the old, and a connection lost between two copies leaves it so
until the next run of the source. The local lock keeps one run per source per machine; two
machines writing the same source of one lake are not kept apart.

Credentials and the endpoint come from the environment only (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL),
never from the catalog or the warehouse file: the warehouse's connection makes a temporary DuckDB
secret from them each time it opens.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.fs as pafs
import pyarrow.parquet as pq

from citypipe.core.attempt import Attempt
from citypipe.core.lake import KINDS, OBSERVATIONS, Lake, default_lake
from citypipe.geo.errors import ConfigurationError, UnavailableError

__all__ = ["LOCAL_ENV", "ObjectLake", "S3Settings", "lake_at"]

SCHEME = "s3://"
LOCAL_ENV = "CITYPIPE_LAKE_LOCAL"
"""The local folder of an object-store lake (default `data/s3/<bucket>/<prefix>`)."""
TABLES = (*KINDS, "quarantine", "attempts", OBSERVATIONS)
"""The folders under the prefix that readers (and analysts' SQL) read."""
_RECORDS = (("attempts", "json"), ("quarantine", "parquet"))
"""What a failed run leaves in the local folder, uploaded after it."""
_CHUNK = 8 << 20


@dataclass(frozen=True)
class S3Settings:
    """How to reach the store, from the environment."""

    key_id: str
    secret: str
    token: str | None
    region: str
    endpoint: str | None
    """host[:port] of a service other than AWS (MinIO, Ceph, moto), None for AWS."""
    https: bool

    @classmethod
    def from_env(cls) -> S3Settings:
        env = os.environ
        key_id, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        if not (key_id and secret):
            raise ConfigurationError(
                "an s3:// lake needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"
            )
        url = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        parts = urlsplit(url) if url else None
        if parts is not None and (parts.scheme not in ("http", "https") or not parts.netloc):
            raise ConfigurationError(f"AWS_ENDPOINT_URL {url!r} is not an http(s):// URL")
        return cls(
            key_id=key_id,
            secret=secret,
            token=env.get("AWS_SESSION_TOKEN") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            endpoint=parts.netloc if parts else None,
            https=parts is None or parts.scheme == "https",
        )

    def filesystem(self) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(
            access_key=self.key_id,
            secret_key=self.secret,
            session_token=self.token,
            region=self.region,
            endpoint_override=self.endpoint,
            scheme="https" if self.https else "http",
        )

    def duckdb_secret(self, scope: str) -> str:
        """The SQL of a temporary DuckDB secret for `scope` (kept in memory, never in a file)."""

        def quoted(value: str) -> str:
            return "'" + value.replace("'", "''") + "'"

        options = {"KEY_ID": self.key_id, "SECRET": self.secret, "REGION": self.region}
        if self.token:
            options["SESSION_TOKEN"] = self.token
        if self.endpoint:  # services other than AWS take bucket names in the path
            options |= {"ENDPOINT": self.endpoint, "URL_STYLE": "path"}
        said = ", ".join(f"{k} {quoted(v)}" for k, v in options.items())
        return (
            f"CREATE OR REPLACE TEMPORARY SECRET citypipe_lake (TYPE s3, PROVIDER config, {said}, "
            f"USE_SSL {str(self.https).lower()}, SCOPE {quoted(scope)})"
        )


def lake_at(location: str | Path | None = None) -> Lake:
    """The lake `location` names (`--lake`; default `CITYPIPE_LAKE`, else data/lake): a folder,
    or `s3://bucket/prefix`."""
    text = str(location or os.environ.get("CITYPIPE_LAKE") or default_lake())
    if text.startswith(SCHEME):
        return ObjectLake.at(text)
    if "://" in text:
        raise ConfigurationError(f"lake {text!r}: a lake is a folder or s3://bucket/prefix")
    return Lake(Path(text))


@dataclass(frozen=True)
class ObjectLake(Lake):
    """A lake whose tables are objects under `url`; `root` is its local folder (run staging,
    the warehouse file, the validation reports)."""

    url: str = ""

    @classmethod
    def at(cls, url: str) -> ObjectLake:
        bucket, _, prefix = url.removeprefix(SCHEME).strip("/").partition("/")
        if not bucket:
            raise ConfigurationError(f"lake {url!r} names no bucket: s3://bucket/prefix")
        url = f"{SCHEME}{bucket}/{prefix}".rstrip("/")
        local = os.environ.get(LOCAL_ENV) or Path("data", "s3", bucket, *prefix.split("/"))
        return cls(root=Path(local), url=url)

    @property
    def location(self) -> str:
        return self.url

    @property
    def readable(self) -> list[str]:
        return [f"{self.url}/{t}/" for t in TABLES]

    def files_base(self, relative: bool) -> str:
        return f"{self.url}/"  # an object store has no working directory to be relative to

    def duckdb_access(self) -> str | None:
        """A temporary secret made from the AWS_* environment, for httpfs."""
        return self.settings.duckdb_secret(f"{self.url}/")

    @property
    def prefix(self) -> str:
        """bucket/prefix: where the tables are in `fs`."""
        return self.url.removeprefix(SCHEME)

    @cached_property
    def settings(self) -> S3Settings:
        return S3Settings.from_env()

    @cached_property
    def fs(self) -> pafs.S3FileSystem:
        return self.settings.filesystem()

    def _key(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts))

    def holds(self, folder: str, suffix: str = "parquet") -> bool:
        selector = pafs.FileSelector(self._key(folder), recursive=True, allow_not_found=True)
        try:
            found = self.fs.get_file_info(selector)
        except OSError as e:
            raise UnavailableError(f"{self.url}: the object store cannot be listed: {e}") from e
        depth = self._key(folder).count("/") + 2
        return any(
            f.type == pafs.FileType.File and f.path.endswith(f".{suffix}")
            and f.path.count("/") == depth
            for f in found
        )  # fmt: skip

    def footer(self, kind: str, unit: str) -> dict[bytes, bytes] | None:
        try:
            meta = pq.read_metadata(self._key(self.landed_name(kind, unit)), filesystem=self.fs)
        except (OSError, ValueError):
            return None
        return meta.metadata or {}

    @contextmanager
    def attempt(self, source: str, path: str | None = None) -> Iterator[Attempt]:
        """A run as in a local lake (`Lake.attempt`), landed by `_land`; what a failed run
        records is uploaded after it."""
        bucket = self.prefix.partition("/")[0]
        try:
            found = self.fs.get_file_info(bucket).type
        except OSError as e:
            raise UnavailableError(f"{self.url}: the object store cannot be reached: {e}") from e
        if found == pafs.FileType.NotFound:
            raise ConfigurationError(f"{self.url}: no bucket {bucket!r}")
        try:
            with super().attempt(source, path) as attempt:
                yield attempt
        finally:
            self._upload_records()

    def _land(self, attempt: Attempt) -> None:
        """Upload the run's files to its staging keys, then copy each into place (features
        last); what the run stages is removed once it landed, or by the next run of the source."""
        staging = self._key(".staging", attempt.source)
        staged = f"{staging}/{attempt.run_id}"
        moves = {}
        for kind in KINDS:
            file = attempt.file(kind)
            landed = self.landed_name(kind, attempt.source)
            moves[landed] = file if file.exists() else self.empty_file(kind)
        for file in sorted((attempt.folder / OBSERVATIONS).glob("day=*/*.parquet")):
            moves[f"{OBSERVATIONS}/{file.parent.name}/{file.name}"] = file
        order = sorted(moves, key=lambda key: key.startswith(("features/", OBSERVATIONS)))
        try:  # the source's lock is ours: what is staged under its name belongs to dead runs
            self.fs.delete_dir_contents(staging, missing_dir_ok=True)
            for key in order:
                self._upload(moves[key], f"{staged}/{key}")
            for key in order:
                self.fs.copy_file(f"{staged}/{key}", self._key(key))
        except OSError as e:
            raise UnavailableError(
                f"{self.url}: the run could not be stored ({e}); the previous objects are kept"
            ) from e
        with suppress(OSError):
            self.fs.delete_dir(staged)
        shutil.rmtree(attempt.folder, ignore_errors=True)

    def _upload(self, file: Path, key: str) -> None:
        with file.open("rb") as data, self.fs.open_output_stream(key) as out:
            shutil.copyfileobj(data, out, _CHUNK)

    def _upload_records(self) -> None:
        """Put the attempt records and quarantined rejects that failed runs wrote in the local
        folder into place (each a new key), then remove them; what cannot be uploaded now is
        left for the next run."""
        for folder, suffix in _RECORDS:
            for file in sorted((self.root / folder).glob(f"*/*.{suffix}")):
                key = f"{folder}/{file.parent.name}/{file.name}"
                staged = self._key(".staging", file.parent.name, "records", key)
                with suppress(OSError):
                    self._upload(file, staged)
                    self.fs.move(staged, self._key(key))
                    file.unlink()

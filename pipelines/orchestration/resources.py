"""Dagster resources: where the lake is, which catalog describes the sources, and what becomes
of an asset's value (nothing: the lake holds what an asset made).

All are typed configuration, resolved when a run starts or the definitions are built, never
when this module is imported, so importing it reads no file and no environment variable.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableIOManager, ConfigurableResource, EnvVar, InputContext, OutputContext
from pydantic import Field

from citypipe.core.catalog import Catalog, default_catalog, load_catalog
from citypipe.core.lake import Lake, default_lake
from citypipe.core.object_lake import lake_at

__all__ = ["LAKE_ENV", "CatalogResource", "LakeResource", "UnstoredValues"]

LAKE_ENV = "CITYPIPE_LAKE"


class LakeResource(ConfigurableResource):
    """The lake the assets write to."""

    root: str = Field(
        description=f"Folder of the lake (`{LAKE_ENV}`), relative to the working directory, "
        "or s3://bucket/prefix (credentials from the AWS_* environment variables)."
    )
    force: bool = Field(
        default=False,
        description="Ingest every source again, also those whose file did not change, and "
        "harvest incremental services whole.",
    )

    @classmethod
    def from_env(cls) -> LakeResource:
        """`CITYPIPE_LAKE` as an EnvVar when set, so the UI shows the variable and a run reads its
        value when it starts; else the default data/lake."""
        if os.environ.get(LAKE_ENV):
            return cls(root=EnvVar(LAKE_ENV))
        return cls(root=str(default_lake()))

    def lake(self) -> Lake:
        return lake_at(self.root)


class CatalogResource(ConfigurableResource):
    """The catalog file the code location is built from."""

    path: str = Field(
        default_factory=lambda: str(default_catalog()),
        description="Catalog YAML (`CITYPIPE_CATALOG`, else the repository's data/catalog.yaml).",
    )

    def catalog(self) -> Catalog:
        return load_catalog(Path(self.path))


class UnstoredValues(ConfigurableIOManager):
    """The IO manager of the assets: their values are not stored. The one asset with a value,
    a harmonised source, has its `IngestReport`, which the run that made it reads back in
    process (`citypipe run`); every asset depends on another by `deps`, never loading a value.
    Not Dagster's mem_io_manager, which `dagster dev`'s multiprocess executor refuses."""

    def handle_output(self, context: OutputContext, obj: object) -> None:
        pass

    def load_input(self, context: InputContext) -> object:
        raise NotImplementedError(f"{context.asset_key}: asset values are not stored")
